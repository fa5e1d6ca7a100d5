/**
 * Start-up refusals: a server in MIXED binlog format, an account without privileges, a wrong password and an
 * unreachable server each give one clear error that names what to change and never the password.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MysqlCapture } from '../../capture/mysql/capture.ts';
import { MemorySink, memoryLogger, sourceConfig } from '../fixtures/capture-kit.ts';
import { admin, resetSchemas, startInstance, stopInstance } from '../fixtures/mariadb.ts';

const NAME = 'capmixed';
const PORT = 3419;
const NOTHING_LISTENS = 3418;

async function runCapture(over: Parameters<typeof sourceConfig>[1], port = PORT): Promise<unknown> {
  const { log } = memoryLogger('warn');
  const capture = new MysqlCapture({
    source: sourceConfig(port, over),
    sink: new MemorySink(),
    resume: null,
    log,
    retry: { attempts: 3, baseDelayMs: 50, maxDelayMs: 100 },
  });
  return capture.run(new AbortController().signal).then(
    () => new Error('capture started although it should not'),
    (e: unknown) => e,
  );
}

describe('capture: prerequisites and connection errors', () => {
  beforeAll(async () => {
    startInstance(NAME, PORT, { mixed: true });
    const a = await admin(PORT);
    await resetSchemas(a);
    await a.query('CREATE DATABASE app');
    await a.query('CREATE TABLE app.t (id INT PRIMARY KEY)');
    await a.query("CREATE USER IF NOT EXISTS 'weak'@'127.0.0.1' IDENTIFIED BY 'weak-pw'");
    await a.query("GRANT SELECT ON `other`.* TO 'weak'@'127.0.0.1'");
    await a.end();
  }, 120_000);

  afterAll(() => {
    stopInstance(NAME);
  });

  it('refuses a MIXED-format server, naming binlog_format and the fix', async () => {
    const err = await runCapture({});
    expect(err).toMatchObject({ code: 'PREREQUISITE', retriable: false });
    expect((err as Error).message).toBe(
      'binlog_format is MIXED on 127.0.0.1:3419; tidemark needs ROW: set binlog_format=ROW in the server config ' +
        '(or SET GLOBAL binlog_format=ROW) and restart capture',
    );
  });

  it('collects every failed check into one message', async () => {
    const err = await runCapture({ user: 'weak', password: 'weak-pw', server_id: PORT });
    expect(err).toMatchObject({ code: 'PREREQUISITE' });
    const msg = (err as Error).message;
    expect(msg).toMatch(/^5 prerequisite checks failed on 127.0.0.1:3419:/);
    expect(msg).toContain('binlog_format is MIXED');
    expect(msg).toContain('source.server_id 3419 is the server_id of 127.0.0.1:3419 itself');
    expect(msg).toContain("GRANT REPLICATION SLAVE ON *.* TO 'weak'@'127.0.0.1'");
    expect(msg).toContain("GRANT BINLOG MONITOR ON *.* TO 'weak'@'127.0.0.1'");
    expect(msg).toContain("GRANT SELECT ON `app`.* TO 'weak'@'127.0.0.1'");
  });

  it('a wrong password is a non-retriable AUTH error without the password', async () => {
    const t0 = Date.now();
    const err = await runCapture({ password: 'not-the-password' });
    expect(err).toMatchObject({ code: 'AUTH', retriable: false });
    const msg = (err as Error).message;
    expect(msg).toContain('127.0.0.1:3419');
    expect(msg).toContain('tidemark_cap');
    expect(msg).not.toContain('not-the-password');
    expect(JSON.stringify((err as { context: unknown }).context)).not.toContain('not-the-password');
    expect(Date.now() - t0).toBeLessThan(5_000); // not retried
  });

  it('an unreachable server is retried, then reported with host:port and user', async () => {
    const err = await runCapture({}, NOTHING_LISTENS);
    expect(err).toMatchObject({ code: 'RETRIES_EXHAUSTED', retriable: false });
    const cause = (err as { cause: { code: string; retriable: boolean; message: string } }).cause;
    expect(cause).toMatchObject({ code: 'CONNECT', retriable: true });
    expect(cause.message).toContain('127.0.0.1:3418 as tidemark_cap');
    expect(cause.message).not.toContain('cap-pw');
  });
});

/**
 * End to end through the real CLI (`tidemark` as a child process): bad input and broken environments each end
 * with exactly one clear `tidemark:` line on stderr, a non-zero exit code, no stack trace and never the password;
 * `status` still reports when a target is down; `verify` finds a row changed by hand on the replica.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, startInstance, stopInstance } from '../fixtures/mariadb.ts';
import {
  type CliResult,
  createTopology,
  exited,
  runCli,
  startRun,
  type Topology,
  caughtUpWhileRunning,
} from '../fixtures/topology.ts';

const NAME = 'e2ecli';
const SRC_PORT = 3487;
const REP_PORT = 3488;
const MIXED = { name: 'e2eclimixed', port: 3489 };
const NOTHING_LISTENS = 3499;
const BAD_PASSWORD = 'Wr0ng-Pa55-XYZ';

let t: Topology;
let baseConfig: string;

beforeAll(async () => {
  t = await createTopology({ name: NAME, sourcePort: SRC_PORT, replicaPort: REP_PORT, include: ['app.*'] });
  baseConfig = readFileSync(t.config, 'utf8');
  startInstance(MIXED.name, MIXED.port, { mixed: true, fresh: true });
});

afterAll(() => {
  stopInstance(`${NAME}src`);
  stopInstance(`${NAME}rep`);
  stopInstance(MIXED.name);
});

/** Writes a variant of the topology's config into its directory (so relative paths resolve the same way). */
function variant(file: string, text: string): string {
  const p = join(t.dir, file);
  writeFileSync(p, text);
  return p;
}

/** The source section's port line and password line, replaced. */
function withSource(over: { port?: number; password?: string; journal?: string }): string {
  let text = baseConfig;
  if (over.port !== undefined) text = text.replace(`port: ${SRC_PORT}\n`, `port: ${over.port}\n`);
  if (over.password !== undefined) text = text.replace('password: cap-pw\n', `password: ${over.password}\n`);
  if (over.journal !== undefined) text = text.replace('dir: ./journal\n', `dir: ${over.journal}\n`);
  return text;
}

/** Exactly one `tidemark:` line, no stack trace, and the line itself. */
function oneErrorLine(r: CliResult): string {
  const ctx = JSON.stringify(r);
  const lines = r.stderr.trim().split('\n');
  const errs = lines.filter((l) => l.startsWith('tidemark:'));
  expect(errs, ctx).toHaveLength(1);
  expect(
    lines.filter((l) => /^\s+at /.test(l)),
    ctx,
  ).toEqual([]);
  expect(r.stderr, ctx).not.toMatch(/\n {4}at /);
  return errs[0] as string;
}

describe('config errors (exit 2)', () => {
  it('malformed YAML (bad indentation) names the file and the line', async () => {
    // One key of the source section indented by one space instead of two.
    const text = baseConfig.replace('\n  port: ', '\n port: ');
    const badLine = text.split('\n').indexOf(` port: ${SRC_PORT}`) + 1;
    expect(badLine).toBeGreaterThan(1);
    const cfg = variant('bad-indent.yaml', text);
    const r = await runCli(['run', '-c', cfg], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(2);
    const line = oneErrorLine(r);
    expect(line).toBe(
      `tidemark: ${cfg}: line ${badLine}, column 1: not valid YAML: All mapping items must start at the same column`,
    );
    expect(r.stdout).toBe('');
  });

  it('a config without targets names `targets`', async () => {
    const cfg = variant('no-targets.yaml', baseConfig.replace(/targets:\n(?: {2}.*\n|\s+-.*\n)+/, ''));
    expect(readFileSync(cfg, 'utf8')).not.toContain('targets');
    const r = await runCli(['run', '-c', cfg], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(2);
    const line = oneErrorLine(r);
    expect(line).toContain(cfg);
    expect(line).toMatch(/\btargets\b/);
    expect(line).toContain('required');
    expect(line).not.toContain('cap-pw');
  });
});

describe('runtime refusals of `tidemark run`', () => {
  it('an unreachable server stops it within 15 s with one line naming the address', async () => {
    const cfg = variant('unreachable.yaml', withSource({ port: NOTHING_LISTENS, journal: './journal-unreachable' }));
    const started = Date.now();
    const r = await runCli(['run', '-c', cfg], { timeoutMs: 30_000 });
    const elapsed = Date.now() - started;
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.code, r.stderr).not.toBeNull(); // null: killed by runCli's timeout
    expect(elapsed).toBeLessThan(15_000);
    const line = oneErrorLine(r);
    expect(line).toContain(`127.0.0.1:${NOTHING_LISTENS}`);
    expect(line).toMatch(/ECONNREFUSED|refused|connect/i);
  });

  it('a wrong password is refused naming the user, and the password appears nowhere', async () => {
    const cfg = variant('wrong-pw.yaml', withSource({ password: BAD_PASSWORD, journal: './journal-wrongpw' }));
    const logFile = join(t.dir, 'tidemark.log');
    const logBefore = existsSync(logFile) ? readFileSync(logFile, 'utf8').length : 0;
    const r = await runCli(['run', '-c', cfg], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.code, r.stderr).not.toBeNull();
    const line = oneErrorLine(r);
    expect(line).toMatch(/access denied/i);
    expect(line).toContain('tidemark_cap');
    expect(line).toContain(`127.0.0.1:${SRC_PORT}`);
    expect(r.stdout).not.toContain(BAD_PASSWORD);
    expect(r.stderr).not.toContain(BAD_PASSWORD);
    // Nor in anything this run logged.
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(logBefore) : '';
    expect(log).not.toContain(BAD_PASSWORD);
  });

  it('a source in MIXED binlog format is refused, naming binlog_format and ROW', async () => {
    const cfg = variant(
      'mixed.yaml',
      withSource({ port: MIXED.port, journal: './journal-mixed' }).replace(
        `server_id: ${40000 + SRC_PORT}`,
        `server_id: ${40000 + MIXED.port}`,
      ),
    );
    const r = await runCli(['run', '-c', cfg], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.code, r.stderr).not.toBeNull();
    const line = oneErrorLine(r);
    expect(line).toContain('binlog_format');
    expect(line).toContain('ROW');
    expect(line).toContain('MIXED');
    expect(line).toContain(`127.0.0.1:${MIXED.port}`);
  });
});

describe('status with an unreachable target', () => {
  it('still prints the status, shows the target error and exits 0', async () => {
    const cfg = variant(
      'target-down.yaml',
      withSource({ journal: './journal-status' }).replace(`port: ${REP_PORT}\n`, `port: ${NOTHING_LISTENS}\n`),
    );
    const j = await runCli(['status', '-c', cfg, '--json'], { timeoutMs: 30_000 });
    expect(j.code, j.stderr).toBe(0);
    const doc = JSON.parse(j.stdout) as {
      source: { address: string; position: unknown; error: string | null };
      targets: { name: string; applied: unknown; error: string | null }[];
    };
    expect(doc.source.address).toBe(`127.0.0.1:${SRC_PORT}`);
    expect(doc.source.error).toBeNull();
    expect(doc.source.position).not.toBeNull();
    expect(doc.targets).toHaveLength(1);
    expect(doc.targets[0]?.name).toBe('replica');
    expect(doc.targets[0]?.applied).toBeNull();
    expect(doc.targets[0]?.error).toMatch(/ECONNREFUSED|refused|connect/i);

    const h = await runCli(['status', '-c', cfg], { timeoutMs: 30_000 });
    expect(h.code, h.stderr).toBe(0);
    expect(h.stdout).toMatch(/^target {2}replica\n {2}unreachable: .*(ECONNREFUSED|refused|connect)/im);
    expect(h.stdout).not.toContain('apply-pw');
  });
});

describe('verify after a row was changed by hand on the replica', () => {
  it('exits 3 and lists that primary key as changed', async () => {
    const src = await admin(SRC_PORT);
    await src.query('CREATE DATABASE app');
    await src.query('CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)');
    await src.query("INSERT INTO app.t SELECT seq, CONCAT('v', seq) FROM app.seq_1_to_50");
    await src.end();
    const child = startRun(t.config);
    try {
      const p = await caughtUpWhileRunning(t, child, 60_000);
      expect(p.replica, (child as unknown as { lastStderr: () => string }).lastStderr()).toBe(p.source);
      const before = await runCli(['verify', '-c', t.config, '--json'], { timeoutMs: 60_000 });
      expect(before.code, before.stderr + before.stdout).toBe(0);
      expect(JSON.parse(before.stdout).equal).toBe(true);

      const rep = await admin(REP_PORT);
      await rep.query("UPDATE app.t SET v = 'by hand' WHERE id = 17");
      await rep.end();

      const r = await runCli(['verify', '-c', t.config, '--json'], { timeoutMs: 60_000 });
      expect(r.code, r.stderr + r.stdout).toBe(3);
      const doc = JSON.parse(r.stdout) as {
        equal: boolean;
        targets: {
          name: string;
          equal: boolean;
          tables: { schema: string; table: string; equal: boolean; differences: { key: string; kind: string }[] }[];
        }[];
      };
      expect(doc.equal).toBe(false);
      const table = doc.targets[0]?.tables.find((x) => x.schema === 'app' && x.table === 't');
      expect(table?.equal).toBe(false);
      expect(table?.differences).toEqual([{ pk: ['17'], key: 'id=17', kind: 'changed' }]);
    } finally {
      child.kill('SIGTERM');
      await exited(child);
    }
  });
});

/**
 * Users, roles and grants, opt-in (issue #16, MariaDB): `source.accounts` lists two users (one with a password,
 * one holding a role) and the role; the source also has an account that is not listed, and the replica an account
 * of its own plus a stale copy of a listed one (another password, an extra grant).
 *   - baseline: the listed accounts exist on the replica with the source's SHOW CREATE USER and SHOW GRANTS (the
 *     stale copy converged), the unlisted one is absent, the replica's own account untouched;
 *   - stream: GRANT / REVOKE / ALTER USER … IDENTIFIED BY / DROP USER on listed accounts followed, statements about
 *     unlisted accounts ignored; the password works on the replica (a connection with it);
 *   - verify compares the listed accounts (SHOW CREATE USER + SHOW GRANTS): equal, then DIFFERENT after a change on
 *     the replica, naming the grant and never a hash;
 *   - no password and no hash in tidemark.log, `tidemark log` / `history` / `verify` output, nor the rollback index.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin } from '../fixtures/mariadb.ts';
import {
  caughtUpWhileRunning,
  cliOk,
  createTopology,
  runCli,
  startRun,
  stopTopology,
  type Topology,
} from '../fixtures/topology.ts';

const NAME = 'ac';
const SRC_PORT = 3750;
const REP_PORT = 3751;
const PW1 = 'App-Secret-One-7f3a';
const PW2 = 'App-Secret-Two-9c1e';
const OTHER_PW = 'Other-Secret-5d2b';

type Rows = mysql.RowDataPacket[];

let t: Topology;
let child: ChildProcess | null = null;
let src: mysql.Connection;
let rep: mysql.Connection;
/** Every password hash the listed accounts had on the source. */
const hashes = new Set<string>();

const LISTED = ["'ac_app'@'%'", "'ac_rep'@'127.0.0.1'", 'ac_reader'];

async function column(c: mysql.Connection, sql: string): Promise<string[]> {
  const [rows] = (await c.query({ sql, rowsAsArray: true })) as unknown as [unknown[][]];
  return rows.map((r) => String(r[0]));
}

/** SHOW CREATE USER (users) and SHOW GRANTS, or null when the account is absent. */
async function account(c: mysql.Connection, name: string): Promise<{ create: string[]; grants: string[] } | null> {
  try {
    const create = name.includes('@') ? await column(c, `SHOW CREATE USER ${name}`) : [];
    const grants = (await column(c, `SHOW GRANTS FOR ${name}`)).sort();
    for (const s of [...create, ...grants]) for (const m of s.matchAll(/PASSWORD '([^']+)'/g)) hashes.add(m[1]!);
    return { create, grants };
  } catch (err) {
    if ([1133, 1141, 1396].includes((err as { errno?: number }).errno ?? 0)) return null;
    throw err;
  }
}

async function exists(c: mysql.Connection, user: string): Promise<boolean> {
  const [[r]] = (await c.query('SELECT COUNT(*) AS n FROM mysql.user WHERE User = ?', [user])) as unknown as [Rows];
  return Number(r?.['n']) > 0;
}

async function expectListedEqual(): Promise<void> {
  for (const a of LISTED) expect(await account(rep, a), a).toEqual(await account(src, a));
}

/** Connects to the replica as ac_app with `password`; the error number when refused. */
async function connectAsApp(password: string): Promise<number | 'ok'> {
  try {
    const c = await mysql.createConnection({ host: '127.0.0.1', port: REP_PORT, user: 'ac_app', password });
    await c.query('SELECT COUNT(*) FROM shop.t');
    await c.end();
    return 'ok';
  } catch (err) {
    return (err as { errno?: number }).errno ?? -1;
  }
}

beforeAll(async () => {
  t = await createTopology({
    name: NAME,
    sourcePort: SRC_PORT,
    replicaPort: REP_PORT,
    include: ['shop.*'],
  });
  // source.accounts goes inside the fixture's `source:` section (extraYaml appends top-level sections only).
  const cfg = readFileSync(t.config, 'utf8').replace(
    '  baseline:\n',
    "  accounts: ['ac_app@%', 'ac_rep@127.0.0.1', 'ac_reader']\n  baseline:\n",
  );
  expect(cfg).toContain('accounts:');
  writeFileSync(t.config, cfg);
  src = await admin(SRC_PORT);
  rep = await admin(REP_PORT);
  // The apply account creates users and grants what they hold: CREATE USER and GRANT OPTION (README).
  await rep.query("GRANT ALL ON *.* TO 'tidemark_apply'@'127.0.0.1' WITH GRANT OPTION");
  for (const s of [
    'CREATE DATABASE shop',
    'CREATE TABLE shop.t (id INT PRIMARY KEY, v INT)',
    'INSERT INTO shop.t VALUES (1, 1), (2, 2)',
    'CREATE ROLE ac_reader',
    'GRANT SELECT ON shop.* TO ac_reader',
    `CREATE USER 'ac_app'@'%' IDENTIFIED BY '${PW1}'`,
    "GRANT SELECT, INSERT ON shop.* TO 'ac_app'@'%'",
    "CREATE USER 'ac_rep'@'127.0.0.1' WITH MAX_QUERIES_PER_HOUR 100",
    "GRANT ac_reader TO 'ac_rep'@'127.0.0.1'",
    "SET DEFAULT ROLE ac_reader FOR 'ac_rep'@'127.0.0.1'",
    `CREATE USER 'ac_other'@'%' IDENTIFIED BY '${OTHER_PW}'`,
    "GRANT SELECT ON shop.* TO 'ac_other'@'%'",
  ]) {
    await src.query(s);
  }
  for (const s of [
    "CREATE USER 'ac_own'@'%' IDENTIFIED BY 'own-pw'",
    "GRANT SELECT ON shop.* TO 'ac_own'@'%'",
    // A stale copy of a listed account: another password and an extra grant, both gone after the baseline.
    "CREATE USER 'ac_app'@'%' IDENTIFIED BY 'stale-pw'",
    "GRANT DELETE ON shop.* TO 'ac_app'@'%'",
  ]) {
    await rep.query(s);
  }
  child = startRun(t.config);
  await caughtUpWhileRunning(t, child, 120_000);
}, 240_000);

afterAll(async () => {
  await stopTopology(child, [src, rep], NAME);
});

describe('accounts (source.accounts)', () => {
  let own: { create: string[]; grants: string[] } | null = null;

  it('the baseline makes the listed accounts equal and leaves the others alone', async () => {
    await expectListedEqual();
    const app = await account(rep, "'ac_app'@'%'");
    expect(app?.grants.join('\n')).toContain('SELECT, INSERT ON `shop`.*');
    expect(app?.grants.join('\n')).not.toContain('DELETE');
    expect((await account(rep, "'ac_rep'@'127.0.0.1'"))?.grants.join('\n')).toContain('SET DEFAULT ROLE `ac_reader`');
    expect(await exists(rep, 'ac_other')).toBe(false);
    own = await account(rep, "'ac_own'@'%'");
    expect(own?.grants.join('\n')).toContain('GRANT SELECT ON `shop`.* TO `ac_own`@`%`');
    expect(await connectAsApp(PW1)).toBe('ok');
    expect(await connectAsApp('stale-pw')).toBe(1045);
  });

  it('follows GRANT, REVOKE, ALTER USER … IDENTIFIED BY and DROP USER on listed accounts, ignores the others', async () => {
    for (const s of [
      "GRANT UPDATE ON shop.t TO 'ac_app'@'%'",
      "REVOKE INSERT ON shop.* FROM 'ac_app'@'%'",
      `ALTER USER 'ac_app'@'%' IDENTIFIED BY '${PW2}'`,
      'GRANT INSERT ON shop.* TO ac_reader',
      "GRANT INSERT ON shop.* TO 'ac_other'@'%'",
      `ALTER USER 'ac_other'@'%' IDENTIFIED BY '${OTHER_PW}x'`,
      "CREATE USER 'ac_new'@'%'",
      "DROP USER 'ac_rep'@'127.0.0.1'",
      'INSERT INTO shop.t VALUES (3, 3)',
    ]) {
      await src.query(s);
    }
    await account(src, "'ac_app'@'%'"); // remember the new hash
    await caughtUpWhileRunning(t, child!, 60_000);
    await expectListedEqual();
    expect((await account(rep, "'ac_app'@'%'"))?.grants.join('\n')).toContain('UPDATE ON `shop`.`t`');
    expect(await account(rep, "'ac_rep'@'127.0.0.1'")).toBeNull();
    expect((await account(rep, 'ac_reader'))?.grants.join('\n')).toContain('SELECT, INSERT ON `shop`.*');
    expect(await exists(rep, 'ac_other')).toBe(false);
    expect(await exists(rep, 'ac_new')).toBe(false);
    expect(await account(rep, "'ac_own'@'%'")).toEqual(own);
    expect(await connectAsApp(PW2)).toBe('ok');
    expect(await connectAsApp(PW1)).toBe(1045);
  });

  let verifyOutput = '';

  it('verify compares the listed accounts: equal, then DIFFERENT on the replica-side change, no secret shown', async () => {
    const ok = JSON.parse(
      (await cliOk(t.config, ['verify', '--json', '--wait-seconds', '30'])).trim().split('\n').pop()!,
    ) as {
      equal: boolean;
      targets: { objects: { kind: string; name: string; equal: boolean }[] }[];
    };
    expect(ok.equal).toBe(true);
    expect(
      ok.targets[0]!.objects.filter((o) => o.kind === 'user' || o.kind === 'role').map((o) => [
        o.kind,
        o.name,
        o.equal,
      ]),
    ).toEqual([
      ['user', 'ac_app@%', true],
      ['user', 'ac_rep@127.0.0.1', true], // dropped on both
      ['role', 'ac_reader', true],
    ]);
    // A grant and a password changed on the replica only.
    await rep.query("GRANT DELETE ON shop.* TO 'ac_app'@'%'");
    await rep.query("ALTER USER 'ac_app'@'%' IDENTIFIED BY 'replica-only-pw'");
    await account(rep, "'ac_app'@'%'"); // remember the replica's hash
    const bad = await runCli(['verify', '-c', t.config, '--wait-seconds', '5']);
    verifyOutput = bad.stdout + bad.stderr;
    expect(bad.code, verifyOutput).toBe(3);
    expect(bad.stdout).toMatch(/user ac_app@%: DIFFERENT — SHOW CREATE USER differs/);
    expect(bad.stdout).toContain('grants on the replica only: GRANT SELECT, DELETE ON `shop`.* TO `ac_app`@`%`');
    expect(bad.stdout).not.toMatch(/ac_reader: DIFFERENT/);
    await rep.query("REVOKE DELETE ON shop.* FROM 'ac_app'@'%'");
    await rep.query(`ALTER USER 'ac_app'@'%' IDENTIFIED BY '${PW2}'`);
    await cliOk(t.config, ['verify', '--wait-seconds', '5']);
  });

  it('writes no password and no hash to the log, `tidemark log` or `history`', async () => {
    expect(hashes.size).toBeGreaterThanOrEqual(2);
    const outputs = {
      'tidemark.log': readFileSync(join(t.dir, 'tidemark.log'), 'utf8'),
      log: await cliOk(t.config, ['log', '--baseline']),
      'log --json': await cliOk(t.config, ['log', '--baseline', '--json']),
      history: await cliOk(t.config, ['history', '--table', 'shop.t', '--key', 'id=1', '--json']),
      verify: verifyOutput,
    };
    // The rollback index (built by `log`) keeps DDL text redacted; the journal itself holds the statements.
    const index = join(t.dir, 'journal', 'rollback-index.sqlite');
    const indexText = ['', '-wal']
      .map((x) => (existsSync(index + x) ? readFileSync(index + x, 'latin1') : ''))
      .join('');
    expect(indexText).toContain('<redacted>');
    Object.assign(outputs, { 'rollback index': indexText });
    // The account statements are listed (redacted), so the check below looks at their text.
    expect(outputs.log).toContain("IDENTIFIED BY '<redacted>'");
    expect(outputs['log --json']).toContain('GRANT UPDATE ON shop.t');
    for (const [what, text] of Object.entries(outputs)) {
      for (const secret of [PW1, PW2, OTHER_PW, 'stale-pw', ...hashes]) {
        expect(text.includes(secret), `${what} holds ${secret.slice(0, 6)}…`).toBe(false);
      }
    }
  });
});

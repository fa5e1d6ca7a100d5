/**
 * The takeover's executors against real MariaDB 10.11 and real network namespaces (issue #5): fencing a server
 * with open sessions (read_only, sessions gone, a plain account can no longer write, a binlog dump spared),
 * the fence's bounds (a held table lock, a stopped server, a server that never answers), the least-privilege
 * fence account, promotion with its position, and the VIP added, announced and removed inside a namespace.
 * The executors run as failover/README.md's failover account with exactly its documented grants (no root);
 * root only sets up, inspects, and shows what an account with READ_ONLY ADMIN can still do.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/log.ts';
import { fenceServer, isWritable } from '../../failover/fence.ts';
import { demoteServer, promoteServer } from '../../failover/promote.ts';
import { vipAdd, vipDel, vipHeld } from '../../failover/vip.ts';
import { admin, destroyInstance, ROOT_PASSWORD, startInstance, stopInstance } from '../fixtures/mariadb.ts';
import { addHost, type Host, macOf, neighbourMac, netns, netnsUnavailable, runIn } from '../fixtures/netns.ts';
import { ACCOUNTS, failoverAccountSql } from '../fixtures/takeover-lab-files.ts';

const FENCED = { name: 'fx_fenced', port: 3625 };
const PROMOTED = { name: 'fx_promoted', port: 3626 };
const STOPPED = { name: 'fx_stopped', port: 3627 };
const SILENT_PORT = 3628; // accepts TCP, never sends the server greeting
const log = silentLogger;

/** The executors' endpoint: the documented failover account by default. */
const ep = (port: number, user: string = ACCOUNTS.failover.user, password: string = ACCOUNTS.failover.password) => ({
  host: '127.0.0.1',
  port,
  user,
  password,
});

async function connectAs(port: number, user: string, password: string): Promise<mysql.Connection> {
  const { default: m } = await import('mysql2/promise');
  const c = await m.createConnection({ host: '127.0.0.1', port, user, password });
  c.on('error', () => {});
  return c;
}

async function scalar(c: mysql.Connection, sql: string): Promise<string> {
  const [rows] = await c.query<mysql.RowDataPacket[]>(sql);
  return String(Object.values(rows[0] ?? {})[0]);
}

describe('fenceServer and promoteServer on MariaDB', () => {
  let root: mysql.Connection;
  let promotedRoot: mysql.Connection;
  const sessions: mysql.Connection[] = [];
  let dump: ChildProcess | undefined;
  let silent: Server;
  const silentSockets: Socket[] = [];

  beforeAll(async () => {
    startInstance(FENCED.name, FENCED.port, { fresh: true });
    startInstance(PROMOTED.name, PROMOTED.port, { fresh: true });
    startInstance(STOPPED.name, STOPPED.port, { fresh: true });
    stopInstance(STOPPED.name);
    root = await admin(FENCED.port);
    await root.query(`
      CREATE DATABASE fx; CREATE TABLE fx.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT);
      CREATE USER tm_app@'127.0.0.1' IDENTIFIED BY 'app-pw'; GRANT SELECT, INSERT ON fx.* TO tm_app@'127.0.0.1';
      CREATE USER tm_fence_np@'127.0.0.1' IDENTIFIED BY 'fence-pw';
      GRANT READ_ONLY ADMIN, CONNECTION ADMIN ON *.* TO tm_fence_np@'127.0.0.1';
      ${failoverAccountSql().join(';\n')};`);
    promotedRoot = await admin(PROMOTED.port);
    await promotedRoot.query(failoverAccountSql().join(';\n'));
    silent = createServer((s) => silentSockets.push(s));
    await new Promise<void>((r) => silent.listen(SILENT_PORT, '127.0.0.1', r));
  });

  afterAll(async () => {
    for (const s of sessions) s.destroy();
    root?.destroy();
    promotedRoot?.destroy();
    if (dump?.exitCode === null) dump.kill('SIGKILL');
    for (const s of silentSockets) s.destroy();
    await new Promise((r) => silent?.close(r));
    for (const i of [FENCED, PROMOTED, STOPPED]) {
      try {
        destroyInstance(i.name);
      } catch {}
    }
  });

  it('fences a server with open sessions: read_only, sessions gone, a plain account cannot write', async () => {
    const app1 = await connectAs(FENCED.port, 'tm_app', 'app-pw');
    const app2 = await connectAs(FENCED.port, 'tm_app', 'app-pw');
    const rootSession = await admin(FENCED.port);
    sessions.push(app1, app2, rootSession);
    await app1.query('INSERT INTO fx.t (v) VALUES (1)');
    await app2.query('BEGIN');
    await app2.query('INSERT INTO fx.t (v) VALUES (2)'); // uncommitted: must never land
    // A binlog dump thread (a capture reading the binlog, with the local scripts' tidemark_cap): spared.
    dump = spawn(
      'mariadb-binlog',
      [
        '--no-defaults',
        '--read-from-remote-server',
        '--stop-never',
        '-h127.0.0.1',
        `-P${FENCED.port}`,
        '-utidemark_cap',
      ].concat(['-pcap-pw', 'mysql-bin.000001', '--result-file=/dev/null']),
      { stdio: 'ignore' },
    );
    await expect
      .poll(() => scalar(root, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND = 'Binlog Dump'"), {
        timeout: 10_000,
      })
      .toBe('1');

    const t0 = Date.now();
    const r = await fenceServer(ep(FENCED.port), {
      killSessions: true,
      timeoutMs: 10_000,
      log,
    });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.confirmed).toBe(true);
    // 3 client sessions + the admin connection this test holds; the binlog dump is spared.
    expect(r.detail).toMatch(
      /^read_only=ON on 127\.0\.0\.1:3625; 4 session\(s\) killed, 1 replication\/system\/binlog-dump thread\(s\) spared; /,
    );
    // With the documented grants (no SELECT on `mysql`) the fence account sees only its own privileges: the list
    // says so rather than suggest it is complete (root and the apply account are not in it).
    expect(r.detail).toContain(
      'accounts with READ_ONLY ADMIN can still write (those this account can see: tidemark_failover@127.0.0.1)',
    );

    const check = await admin(FENCED.port);
    sessions.push(check);
    expect(await scalar(check, 'SELECT @@global.read_only')).toBe('1');
    for (const s of [app1, app2, rootSession, root]) await expect(s.query('SELECT 1')).rejects.toThrow();
    expect(
      await scalar(check, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND = 'Binlog Dump'"),
    ).toBe('1');
    expect(await scalar(check, 'SELECT GROUP_CONCAT(v ORDER BY v) FROM fx.t')).toBe('1');
    const app3 = await connectAs(FENCED.port, 'tm_app', 'app-pw');
    sessions.push(app3);
    await expect(app3.query('INSERT INTO fx.t (v) VALUES (3)')).rejects.toMatchObject({ errno: 1290 });
    // The limit the report states: an account with READ_ONLY ADMIN (root has ALL) still writes.
    await check.query('INSERT INTO fx.t (v) VALUES (4)');
    expect(await isWritable(ep(FENCED.port), 5000)).toBe(false);
    root = check;
  });

  it('is not confirmed when the fence account cannot see other sessions (no PROCESS)', async () => {
    await root.query('SET GLOBAL read_only = OFF');
    const app = await connectAs(FENCED.port, 'tm_app', 'app-pw');
    sessions.push(app);
    const r = await fenceServer(ep(FENCED.port, 'tm_fence_np', 'fence-pw'), {
      killSessions: true,
      timeoutMs: 10_000,
      log,
    });
    expect(r.confirmed).toBe(false);
    expect(r.detail).toContain("this account lacks PROCESS: other users' sessions were not visible, not killed");
    await expect(app.query('SELECT 1')).resolves.toBeDefined(); // indeed not killed
  });

  it('is bounded by its timeout behind a held table lock, and killing sessions first gets through it', async () => {
    await root.query('SET GLOBAL read_only = OFF');
    const locker = await connectAs(FENCED.port, 'root', ROOT_PASSWORD);
    sessions.push(locker);
    await locker.query('SET SESSION lock_wait_timeout = 5');
    await locker.query('LOCK TABLES fx.t WRITE');
    const t0 = Date.now();
    const r = await fenceServer(ep(FENCED.port), { killSessions: false, timeoutMs: 2500, log });
    expect(Date.now() - t0).toBeLessThan(4000);
    expect(r.confirmed).toBe(false);
    expect(r.detail).toMatch(
      /^SET GLOBAL read_only = ON failed on 127\.0\.0\.1:3625: .*(Lock wait timeout|no answer within)/,
    );
    expect(await isWritable(ep(FENCED.port), 5000)).toBe(true);

    const k = await fenceServer(ep(FENCED.port), { killSessions: true, timeoutMs: 5000, log });
    expect(k.confirmed).toBe(true);
    await expect(locker.query('SELECT 1')).rejects.toThrow();
  });

  it('reports a stopped server as unreachable at once, a silent one within its timeout', async () => {
    let t0 = Date.now();
    const stopped = await fenceServer(ep(STOPPED.port), { killSessions: true, timeoutMs: 3000, log });
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(stopped).toEqual({ confirmed: false, detail: expect.stringMatching(/^unreachable: .*ECONNREFUSED/) });
    expect(await isWritable(ep(STOPPED.port), 3000)).toBeNull();

    t0 = Date.now();
    const hung = await fenceServer(ep(SILENT_PORT), { killSessions: true, timeoutMs: 1000, log });
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(2500);
    expect(hung).toEqual({ confirmed: false, detail: expect.stringMatching(/^unreachable: /) });
    expect(await isWritable(ep(SILENT_PORT), 500)).toBeNull();
  });

  it('refuses a wrong password as "cannot connect", not as unreachable', async () => {
    const r = await fenceServer(ep(FENCED.port, ACCOUNTS.failover.user, 'wrong'), {
      killSessions: true,
      timeoutMs: 5000,
      log,
    });
    expect(r).toEqual({ confirmed: false, detail: expect.stringMatching(/^cannot connect: .*Access denied/) });
    await expect(isWritable(ep(FENCED.port, ACCOUNTS.failover.user, 'wrong'), 5000)).rejects.toThrow(/Access denied/);
  });

  it('promotes: writable again, the position is the binlog end and GTID at the switch', async () => {
    await promotedRoot.query(`
      CREATE DATABASE fx; CREATE TABLE fx.t (id INT PRIMARY KEY);
      INSERT INTO fx.t VALUES (1), (2); SET GLOBAL read_only = ON;`);
    const [ms] = await promotedRoot.query<mysql.RowDataPacket[]>('SHOW MASTER STATUS');
    const gtid = await scalar(promotedRoot, 'SELECT @@global.gtid_binlog_pos');
    expect(await isWritable(ep(PROMOTED.port), 5000)).toBe(false);

    const r = await promoteServer(ep(PROMOTED.port), { timeoutMs: 10_000, log });
    expect(r.position).toEqual({ gtid, file: ms[0]?.['File'], offset: BigInt(ms[0]?.['Position']) });
    expect(gtid).toMatch(/^0-3626-\d+$/);
    expect(r.detail).toBe(
      `127.0.0.1:3626 writable (read_only was ON), promotion position ${ms[0]?.['File']}:${ms[0]?.['Position']} (gtid ${gtid})`,
    );
    expect(await scalar(promotedRoot, 'SELECT @@global.read_only')).toBe('0');
    expect(await isWritable(ep(PROMOTED.port), 5000)).toBe(true);
    // A write after the promotion lies after the position (the other standbys will capture it).
    await promotedRoot.query('INSERT INTO fx.t VALUES (3)');
    const [after] = await promotedRoot.query<mysql.RowDataPacket[]>('SHOW MASTER STATUS');
    expect(BigInt(after[0]?.['Position'])).toBeGreaterThan(r.position.offset);

    const d = await demoteServer(ep(PROMOTED.port), { timeoutMs: 5000, log });
    expect(d.detail).toContain('127.0.0.1:3626 read-only');
    expect(await scalar(promotedRoot, 'SELECT @@global.read_only')).toBe('1');
  });

  it('a failed promote names the step and changes nothing', async () => {
    await expect(promoteServer(ep(STOPPED.port), { timeoutMs: 2000, log })).rejects.toThrow(
      /^promote 127\.0\.0\.1:3627: connect failed$/,
    );
  });
});

const unavailable = netnsUnavailable();
if (unavailable) console.warn(`failover-executors: VIP tests skipped, network namespaces unavailable: ${unavailable}`);

describe.skipIf(unavailable !== null)('VIP inside network namespaces', () => {
  const MINE = ['exa', 'exb', 'exc'];
  const VIP = '10.231.0.140';
  const spec = { address: `${VIP}/24`, interface: 'eth0', garpCount: 2 };
  let bridgeExisted = false;
  let a: Host;
  let b: Host;
  let c: Host;
  const via = (h: Host) => ({ timeoutMs: 10_000, via: ['ip', 'netns', 'exec', h.ns] });

  beforeAll(() => {
    for (const n of MINE) netns(['del', n]); // leftovers of an interrupted run: mine only
    bridgeExisted = spawnSync('ip', ['link', 'show', 'tmbr0']).status === 0;
    if (spawnSync('arping', ['-V']).error) netns(['install']);
    a = addHost('exa', '10.231.0.41');
    b = addHost('exb', '10.231.0.42');
    c = addHost('exc', '10.231.0.43');
  });

  afterAll(() => {
    for (const n of MINE) netns(['del', n]);
    const others = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .some((l) => l.startsWith('tm-'));
    if (!bridgeExisted && !others) spawnSync('ip', ['link', 'del', 'tmbr0']);
  });

  /** The client opens a TCP connection to the VIP: its kernel resolves (and caches) the VIP's MAC. */
  const touch = (from: Host) => runIn(from, 'timeout', ['3', 'bash', '-c', `exec 3<>/dev/tcp/${VIP}/9`]);

  it('adds, announces, reports and removes the VIP; a neighbour follows the move at once', async () => {
    expect(await vipHeld(spec, via(a))).toBe(false);
    const added = await vipAdd(spec, via(a));
    expect(added.already).toBe(false);
    expect(added.detail).toBe(
      `VIP ${VIP}/24 added to eth0 (via ip netns exec tm-exa), 2 gratuitous ARP requests (-U) sent`,
    );
    expect(await vipHeld(spec, via(a))).toBe(true);
    expect(await vipHeld(spec, via(b))).toBe(false);
    touch(c);
    expect(neighbourMac(c, VIP)).toBe(macOf(a));

    expect((await vipAdd(spec, via(a))).already).toBe(true);
    expect(await vipDel(spec, via(a))).toMatchObject({ already: false });
    expect(await vipHeld(spec, via(a))).toBe(false);
    expect(await vipDel(spec, via(a))).toMatchObject({ already: true });

    await vipAdd(spec, via(b));
    // No traffic from c since: only the gratuitous ARP can have changed its cache.
    expect(neighbourMac(c, VIP)).toBe(macOf(b));
    await vipDel(spec, via(b));
  });

  it('names the command and its stderr when it fails', async () => {
    await expect(vipAdd({ ...spec, interface: 'nope0' }, via(a))).rejects.toThrow(
      /^cannot add VIP 10\.231\.0\.140\/24 on nope0: ip netns exec tm-exa ip addr add 10\.231\.0\.140\/24 dev nope0: exited with 1: Cannot find device "nope0"$/,
    );
  });
});

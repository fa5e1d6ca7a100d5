/**
 * Log backups and point-in-time restore the way a DBA runs them, from one config file: `tidemark run` at the
 * primary's site runs the binlog archiver of `backup.logs` beside capture; `tidemark backup run nightly` takes a
 * full while a writer runs; a moment is recorded (GTID + per-table checksums) and the writer goes on; then
 * `tidemark restore --job nightly --to-gtid G` — store, key and log job all from the config — restores the full,
 * replays the archived binlog on a scratch server up to G, and the scratch server's checksums equal the moment's.
 * MariaDB port 3850, scratch server 3851.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Checksums, schemaChecksums } from '../fixtures/checksums.ts';
import { admin, destroyInstance, REPO_ROOT, ROOT_PASSWORD, startInstance, stopInstance } from '../fixtures/mariadb.ts';
import { exited, runCli, startRun } from '../fixtures/topology.ts';

const NAME = 'bk-pitr-run';
const PORT = 3850;
const SCRATCH_PORT = 3851;
const SCRATCH = `pitr-${SCRATCH_PORT}`; // the name `restore --scratch-port` gives its server
const instDir = resolve(process.env['TIDEMARK_RUN_DIR'] ?? resolve(REPO_ROOT, '.run'), 'mariadb', NAME);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let dir: string;
let cfg: string;
let conn: mysql.Connection;
let run: ChildProcess | undefined;

function writer(c: mysql.Connection): { pause: () => Promise<void>; resume: () => void; stop: () => Promise<number> } {
  const st: { state: 'run' | 'pause' | 'stop' } = { state: 'run' };
  let n = 0;
  let idle: () => void = () => undefined;
  let paused: Promise<void> = Promise.resolve();
  const loop = (async () => {
    while (st.state !== 'stop') {
      if (st.state === 'pause') {
        idle();
        await sleep(20);
        continue;
      }
      n++;
      await c.query('INSERT INTO bk.t (v) VALUES (?)', [`row ${n}`]);
      if (n % 7 === 0) await c.query('UPDATE bk.t SET v = CONCAT(v, "+") WHERE id = ?', [n - 3]);
    }
  })();
  return {
    pause: () => {
      paused = new Promise<void>((res) => {
        idle = res;
      });
      st.state = 'pause';
      return paused;
    },
    resume: () => {
      st.state = 'run';
    },
    stop: async () => {
      st.state = 'stop';
      await loop;
      return n;
    },
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tidemark-bkpitrrun-it-'));
  writeFileSync(join(dir, 'master.key'), randomBytes(32).toString('hex'), { mode: 0o600 });
  startInstance(NAME, PORT, { fresh: true });
  destroyInstance(SCRATCH);
  conn = await admin(PORT);
  await conn.query(
    'CREATE DATABASE bk; CREATE TABLE bk.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB;',
  );
  cfg = join(dir, 'tidemark.yaml');
  writeFileSync(
    cfg,
    `source:
  name: src
  host: 127.0.0.1
  port: ${PORT}
  user: root
  password: ${ROOT_PASSWORD}
  include: ["bk.*"]
journal:
  dir: ./journal
targets:
  - name: unused
    port: 3852
    user: root
log:
  level: info
  file: ./tidemark.log
backup:
  stores:
    - name: vault
      kind: dir
      path: ./store
  encryption:
    key_file: ./master.key
  stream:
    option_file: only
    socket: ${join(instDir, 'mysqld.sock')}
    datadir: ${join(instDir, 'data')}
    scratch_dir: ./scratch
  logs:
    - name: binlogs
      store: vault
      segment_seconds: 1
      server_id: 4343
  jobs:
    - name: nightly
      store: vault
      type: full
      logs: binlogs
      retention: { chains: 1 }
`,
  );
}, 120_000);

afterAll(async () => {
  if (run !== undefined) {
    run.kill('SIGTERM');
    await exited(run);
  }
  await conn?.end();
  stopInstance(SCRATCH);
  stopInstance(NAME);
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('log backups in tidemark run, point-in-time restore from the config', () => {
  it('restores a full plus the archived binlog to a recorded GTID: the checksums recorded there', async () => {
    run = startRun(cfg, ['--only', 'capture']);
    const w = writer(await admin(PORT));
    await sleep(1500);
    const full = await runCli(['backup', 'run', 'nightly', '-c', cfg], { timeoutMs: 120_000 });
    expect(full.code, full.stderr).toBe(0);
    await sleep(1500);
    await w.pause();
    const [[{ g }]] = (await conn.query('SELECT @@gtid_binlog_pos AS g')) as unknown as [[{ g: string }]];
    const at: Checksums = await schemaChecksums(conn, 'bk');
    w.resume();
    await sleep(1500);
    const rows = await w.stop();
    expect(rows).toBeGreaterThan(20);
    // the archiver seals every second; give it a few to reach the target
    let restored: Awaited<ReturnType<typeof runCli>> | undefined;
    for (let attempt = 0; attempt < 10; attempt++) {
      await sleep(1000);
      rmSync(join(dir, 'restored'), { recursive: true, force: true });
      restored = await runCli(
        [
          'restore',
          '--job',
          'nightly',
          '--to-gtid',
          g,
          '--into',
          join(dir, 'restored'),
          '--scratch-port',
          String(SCRATCH_PORT),
          '-c',
          cfg,
        ],
        { timeoutMs: 180_000, env: { TIDEMARK_SCRATCH_PASSWORD: ROOT_PASSWORD } },
      );
      if (restored.code === 0 || !/after the last archived segment|has no archived segment/.test(restored.stderr))
        break;
    }
    expect(restored?.code, `${restored?.stdout}\n${restored?.stderr}`).toBe(0);
    expect(restored?.stdout).toContain(`is at GTID ${g}`);
    const scratch = await admin(SCRATCH_PORT);
    try {
      expect(await schemaChecksums(scratch, 'bk')).toEqual(at);
    } finally {
      await scratch.end();
    }
    // the archive came from tidemark run: log segments sealed in the store beside the full
    const ids = readdirSync(join(dir, 'store')).filter((d) => !d.startsWith('.'));
    expect(ids.filter((d) => d.includes('-binlogs-log-')).length).toBeGreaterThan(1);
    expect(ids.filter((d) => d.includes('-nightly-full-')).length).toBe(1);
  }, 300_000);

  it('expire (chains: 1) after a second full drops the first and the log segments only it needed, never a gap', async () => {
    const logSeqs = async (): Promise<number[]> => {
      const out = await runCli(['backup', 'list', '--json', '-c', cfg], { timeoutMs: 60_000 });
      expect(out.code, out.stderr).toBe(0);
      const rows = JSON.parse(out.stdout) as Array<{ type: string; log: { seq: string } | null }>;
      return rows
        .filter((r) => r.type === 'log')
        .map((r) => Number(r.log?.seq))
        .sort((a, b) => a - b);
    };
    const w = writer(await admin(PORT));
    await sleep(1500);
    const second = await runCli(['backup', 'run', 'nightly', '-c', cfg], { timeoutMs: 120_000 });
    expect(second.code, second.stderr).toBe(0);
    await sleep(1500);
    await w.stop();
    await sleep(2500); // the archiver seals what followed
    const before = await logSeqs();
    const ex = await runCli(['backup', 'expire', 'nightly', '-c', cfg], { timeoutMs: 120_000 });
    expect(ex.code, ex.stderr).toBe(0);
    const after = await logSeqs();
    expect(after.length).toBeGreaterThan(0);
    expect(after.length).toBeLessThan(before.length); // the segments only the first full needed are gone
    expect(after).toEqual(before.slice(before.length - after.length)); // a suffix: no gap
    const ids = readdirSync(join(dir, 'store')).filter((d) => !d.startsWith('.'));
    expect(ids.filter((d) => d.includes('-nightly-full-')).length).toBe(1);
  }, 300_000);
});

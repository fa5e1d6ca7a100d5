/**
 * `tidemark backup run|list|star|expire` end to end against a real MariaDB 10.11 (its mariadb-backup) and a real
 * versitygw, with a writer running on the source throughout: full → incremental → differential sealed into the
 * S3 store while the binlog archiver (`tidemark backup logs binlogs`) runs into the same store, `backup list --json`
 * shows the chain (parents, LSNs continuing where the parent ended); bytes written to local disk during each run by
 * the tidemark process and by mariadb-backup, and by the archiver's process throughout, stay small (/proc/PID/io
 * write_bytes, polled; the catalog cache included) and so does mariadb-backup's --target-dir; the archiver's
 * segments are in the store afterwards, seq 1, 2, … and covering the writer's last GTID; a stream command killed (-9) mid-way leaves no manifest and
 * its pieces as orphans that `expire --dry-run` lists and `expire` removes; a starred incremental and its parent
 * survive `expire` with `chains: 1` after a newer chain, the unstarred differential does not.
 * MariaDB port 3862 (3863 unused), versitygw port 7360.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { storeManifests } from '../../backup/restore/pitr.ts';
import { advance, formatGtidPos, gtidAtOrBefore, logSegments, parseGtidPos } from '../../backup/restore/pitr-plan.ts';
import { S3Store } from '../../backup/store/s3.ts';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupConfigYaml, s3StoreYaml, startBackupLab, stopBackupLab } from '../fixtures/backup-config.ts';
import { admin, REPO_ROOT } from '../fixtures/mariadb.ts';
import { descendants, treeBytes } from '../fixtures/proc-tree.ts';
import { CLI, nodeFirstPath, runCli } from '../fixtures/topology.ts';
import { type S3Server, s3Client } from '../fixtures/versitygw.ts';

const NAME = 'bk-run';
const PORT = 3862;
const VGW_PORT = 7360;
const BUCKET = 'bkrun';
const instDir = resolve(process.env['TIDEMARK_RUN_DIR'] ?? resolve(REPO_ROOT, '.run'), 'mariadb', NAME);

let conn: mysql.Connection;
let s3: S3Server;
let dir: string;
/**
 * The catalog cache (node:sqlite) on tmpfs when there is one: its writes are then not in write_bytes (no block
 * device), so what is measured is everything else the processes write to disk ("besides the catalog cache").
 */
let catalogDir: string;
let writer: { stop: () => Promise<number> };

interface Listed {
  id: string;
  type: string;
  parent: string | null;
  chain: string;
  lsn: { from: string; to: string };
  star: unknown;
  pieces: Array<{ key: string }>;
}

function config(file: string, stream: { command: string[]; extra_args?: string[] }): string {
  const path = join(dir, file);
  const y = backupConfigYaml({
    port: PORT,
    unusedPort: 3863,
    dir,
    instDir,
    keyFile: join(dir, 'master.key'),
    command: stream.command,
    extraArgs: stream.extra_args ?? [],
    stores: [s3StoreYaml('vgw', s3, BUCKET, 'site-a/')],
    rest: `  jobs:
    - name: nightly
      store: vgw
      type: full
      retention:
        chains: 1
  catalog_dir: ${catalogDir}
  logs:
    - name: binlogs
      store: vgw
      segment_seconds: 2
      server_id: 4243
      start: oldest
`,
  });
  writeFileSync(path, y);
  return path;
}

let cfg: string;

async function cli(args: string[], file = cfg): Promise<string> {
  const r = await runCli([...args, '-c', file], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`tidemark ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

async function list(): Promise<Listed[]> {
  return JSON.parse(await cli(['backup', 'list', '--job', 'nightly', '--json'])) as Listed[];
}

async function storeKeys(): Promise<string[]> {
  const c = s3Client(s3);
  try {
    const r = await c.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'site-a/' }));
    return (r.Contents ?? []).map((o) => (o.Key as string).slice('site-a/'.length));
  } finally {
    c.destroy();
  }
}

/** Inserts rows until stopped; returns how many it wrote. */
function startWriter(c: mysql.Connection): { stop: () => Promise<number> } {
  let run = true;
  let n = 0;
  const loop = (async () => {
    while (run) {
      await c.query('INSERT INTO bk.t (v) VALUES (?), (?), (?)', ['w'.repeat(100), 'x'.repeat(100), 'y'.repeat(100)]);
      n += 3;
    }
  })();
  return {
    stop: async () => {
      run = false;
      await loop;
      return n;
    },
  };
}

function ioWrite(pid: number): { bytes: number; comm: string } | null {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    return { bytes: Number(/write_bytes: (\d+)/.exec(io)?.[1] ?? 0), comm };
  } catch {
    return null;
  }
}

/**
 * Peak write_bytes of process trees, polled every 20 ms: each root (named, since the CLI's comm is its main
 * thread's) and its descendants; summed per process name by `stop()`. And the peak size of the scratch directory.
 */
function sampleWrites(roots: ReadonlyMap<number, string>): {
  stop: () => { writes: Map<string, number>; scratchMax: number };
} {
  const writes = new Map<number, { bytes: number; comm: string }>();
  let scratchMax = 0;
  const sample = (): void => {
    for (const [root, name] of roots) {
      for (const pid of [root, ...descendants(root)]) {
        const io = ioWrite(pid);
        const w = io !== null && pid === root ? { ...io, comm: name } : io;
        if (w !== null && w.bytes >= (writes.get(pid)?.bytes ?? 0)) writes.set(pid, w);
      }
    }
    scratchMax = Math.max(scratchMax, treeBytes(join(dir, 'scratch')));
  };
  const timer = setInterval(sample, 20);
  return {
    stop: () => {
      sample();
      clearInterval(timer);
      const byComm = new Map<string, number>();
      for (const w of writes.values()) byComm.set(w.comm, (byComm.get(w.comm) ?? 0) + w.bytes);
      return { writes: byComm, scratchMax };
    },
  };
}

interface Measured {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
  readonly writes: Map<string, number>;
  readonly scratchMax: number;
}

/** Starts the CLI (`-c cfg`), sampling write_bytes of it (as `name`) and its children until it exits. */
function measuredCli(args: string[], name: string): { child: ChildProcess; exited: Promise<Measured> } {
  const child = spawn(CLI, [...args, '-c', cfg], {
    cwd: REPO_ROOT,
    env: { ...process.env, PATH: nodeFirstPath() },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (err = (err + String(d)).slice(-20_000)));
  const sampler = sampleWrites(new Map([[child.pid as number, name]]));
  const exited = new Promise<number | null>((res) => child.on('close', res)).then((code) => ({
    code,
    out,
    err,
    ...sampler.stop(),
  }));
  return { child, exited };
}

/** Runs the CLI to its end (exit 0), measured as measuredCli. */
async function measuredRun(args: string[]): Promise<Measured> {
  const r = await measuredCli(args, 'tidemark').exited;
  expect(r.code, r.err).toBe(0);
  return r;
}

/** `tidemark backup logs binlogs` in the background, measured until `stop()` (SIGTERM). */
function startArchiver(): { stop: () => Promise<Measured> } {
  const { child, exited } = measuredCli(['backup', 'logs', 'binlogs'], 'archiver');
  return {
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

beforeAll(async () => {
  // ~8 MB that zstd cannot shrink: a full spans several 2 MiB pieces, so one is stored well before the end
  catalogDir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), `tidemark-${NAME}-catalog-`));
  ({ dir, s3, conn } = await startBackupLab({ name: NAME, port: PORT, vgwPort: VGW_PORT, bucket: BUCKET, rows: 8000 }));
  await conn.query('CREATE TABLE bk.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB');
  cfg = config('tidemark.yaml', { command: ['mariadb-backup'] });
  writer = startWriter(await admin(PORT));
}, 120_000);

afterAll(async () => {
  await writer?.stop().catch(() => 0);
  await stopBackupLab(NAME, { dir, s3, conn });
  if (catalogDir !== undefined) rmSync(catalogDir, { recursive: true, force: true });
});

describe('tidemark backup', () => {
  let chainA: Listed[];

  it('runs full → incremental → differential under a writer, streamed (little local disk), listed as a chain', async () => {
    const [[{ n: rowsBefore }]] = (await conn.query('SELECT COUNT(*) AS n FROM bk.t')) as unknown as [[{ n: string }]];
    const archiver = startArchiver();
    const full = await measuredRun(['backup', 'run', 'nightly']);
    expect(full.out).toMatch(/-nightly-full-[0-9a-f]{6}: full, parent -/);
    const incr = await measuredRun(['backup', 'run', 'nightly', '--type', 'incremental']);
    const diff = await measuredRun(['backup', 'run', 'nightly', '--type', 'differential']);
    await new Promise((r) => setTimeout(r, 2500)); // one more segment_seconds under the writer
    const [[{ g: lastGtid }]] = (await conn.query('SELECT @@gtid_binlog_pos AS g')) as unknown as [[{ g: string }]];
    const arch = await archiver.stop();
    expect(arch.code, arch.err).toBe(0);
    // besides its catalog cache (on tmpfs) tidemark writes nothing to disk; mariadb-backup only its scratch files
    for (const [what, r] of [
      ['full', full],
      ['incremental', incr],
      ['differential', diff],
    ] as const) {
      console.log(`local writes during a ${what}`, Object.fromEntries(r.writes), 'scratch max', r.scratchMax);
      expect(r.writes.has('mariadb-backup'), what).toBe(true);
      expect(r.writes.get('tidemark') ?? 0, what).toBeLessThan(2 << 20);
      expect(r.writes.get('mariadb-backup') ?? 0, what).toBeLessThan(4 << 20);
      expect(r.scratchMax, what).toBeLessThan(1 << 20);
    }
    console.log(
      'local writes of the archiver during the chain',
      Object.fromEntries(arch.writes),
      'catalog cache (tmpfs, not counted)',
      treeBytes(catalogDir),
    );
    expect(arch.writes.has('archiver')).toBe(true);
    expect(arch.writes.get('archiver') ?? 0).toBeLessThan(2 << 20);
    // its segments are in the store: seq 1, 2, … (LOGCONTRACT), up to the writer's position before the stop
    const store = await S3Store.open({
      endpoint: s3.endpoint,
      region: s3.region,
      bucket: BUCKET,
      prefix: 'site-a/',
      forcePathStyle: true,
      credentials: s3.credentials,
    });
    const segs = logSegments(await storeManifests(store).finally(() => store.close()), 'binlogs');
    const reached = segs.reduce((p, m) => advance(p, parseGtidPos(m.gtid ?? '')), parseGtidPos(''));
    console.log(`archiver: ${segs.length} segments up to ${formatGtidPos(reached)} (the source at ${lastGtid})`);
    expect(segs.length).toBeGreaterThan(2);
    expect(segs.map((m) => Number(m.log?.seq))).toEqual(segs.map((_, i) => i + 1));
    expect(gtidAtOrBefore(parseGtidPos(lastGtid), reached)).toBe(true);
    expect(segs.map((m) => m.log?.binlogFile)).toContain('mysql-bin.000001');
    chainA = await list();
    expect(chainA.map((b) => b.type)).toEqual(['full', 'incremental', 'differential']);
    const [f, i, d] = chainA as [Listed, Listed, Listed];
    expect(f.parent).toBeNull();
    expect(i.parent).toBe(f.id);
    expect(d.parent).toBe(f.id);
    expect(new Set(chainA.map((b) => b.chain))).toEqual(new Set([f.id]));
    expect(f.lsn.from).toBe('0');
    expect(i.lsn.from).toBe(f.lsn.to);
    expect(d.lsn.from).toBe(f.lsn.to);
    // to_lsn is mariadb-backup's checkpoint LSN: it moves only when the server checkpoints, so it may repeat
    expect(BigInt(i.lsn.to)).toBeGreaterThanOrEqual(BigInt(f.lsn.to));
    expect(BigInt(d.lsn.to)).toBeGreaterThanOrEqual(BigInt(i.lsn.to));
    const [[{ n: rowsAfter }]] = (await conn.query('SELECT COUNT(*) AS n FROM bk.t')) as unknown as [[{ n: string }]];
    expect(Number(rowsAfter)).toBeGreaterThan(Number(rowsBefore)); // the writer wrote during the chain
    expect(f.pieces.length).toBeGreaterThan(3); // 2 MiB pieces
    for (const b of chainA) expect(b.pieces.length).toBeGreaterThan(0);
    const keys = await storeKeys();
    for (const b of chainA) expect(keys).toContain(`${b.id}/manifest.json`);
  }, 120_000);

  it('a stream command killed mid-way seals nothing; expire --dry-run lists its orphans, expire removes them', async () => {
    // A wrapper that records mariadb-backup's pid; --throttle slows it so the test can kill it after a piece.
    const pidFile = join(dir, 'bk.pid');
    const wrapper = join(dir, 'stream.sh');
    writeFileSync(wrapper, `#!/bin/sh\nmariadb-backup "$@" &\necho $! > ${pidFile}\nwait $!\n`, { mode: 0o755 });
    const slow = config('slow.yaml', { command: [wrapper], extra_args: ['--throttle=10'] });
    rmSync(pidFile, { force: true });
    const before = new Set(await storeKeys());
    const run = runCli(['backup', 'run', 'nightly', '-c', slow], { timeoutMs: 120_000 });
    let killed = false;
    let done = false;
    void run.finally(() => {
      done = true;
    });
    for (let t = 0; t < 600 && !killed && !done; t++) {
      await new Promise((r) => setTimeout(r, 100));
      const fresh = (await storeKeys()).filter((k) => !before.has(k));
      if (fresh.some((k) => k.endsWith('/piece-000001')) && existsSync(pidFile)) {
        process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
        killed = true;
      }
    }
    expect(killed).toBe(true);
    const r = await run;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/stream command .* (exited with status 137|was killed by SIGKILL); nothing was sealed/);
    const orphanKeys = (await storeKeys()).filter((k) => !before.has(k));
    expect(orphanKeys.length).toBeGreaterThan(0);
    expect(orphanKeys.some((k) => k.endsWith('manifest.json'))).toBe(false);
    expect((await list()).map((b) => b.id)).toEqual(chainA.map((b) => b.id));
    await new Promise((res) => setTimeout(res, 1100)); // older than the grace period (0) by a whole second

    const dry = JSON.parse(await cli(['backup', 'expire', 'nightly', '--dry-run', '--json'])) as {
      orphans: Array<{ key: string }>;
      expired: unknown[];
      deletedObjects: number;
    };
    expect(dry.orphans.map((o) => o.key).sort()).toEqual([...orphanKeys].sort());
    expect(dry.expired).toEqual([]); // one chain, chains: 1
    expect(dry.deletedObjects).toBe(0);
    expect((await storeKeys()).filter((k) => !before.has(k))).toEqual(orphanKeys);
    await cli(['backup', 'expire', 'nightly']);
    expect((await storeKeys()).filter((k) => !before.has(k))).toEqual([]);
  }, 120_000);

  it('a starred incremental and its full survive expire (chains: 1) after a newer chain; the differential goes', async () => {
    const [f, i, d] = chainA as [Listed, Listed, Listed];
    expect(await cli(['backup', 'star', i.id, '--note', 'year end'])).toContain('pinning 1 parent');
    await cli(['backup', 'run', 'nightly']);
    const withB = await list();
    const fullB = withB.at(-1) as Listed;
    expect(fullB.type).toBe('full');
    expect(fullB.parent).toBeNull();
    const dry = JSON.parse(await cli(['backup', 'expire', 'nightly', '--dry-run', '--json'])) as {
      expired: Array<{ id: string }>;
    };
    expect(dry.expired.map((x) => x.id)).toEqual([d.id]);
    await cli(['backup', 'expire', 'nightly']);
    const after = await list();
    expect(after.map((b) => b.id)).toEqual([f.id, i.id, fullB.id]);
    expect(after.find((b) => b.id === i.id)?.star).toMatchObject({ kind: 'standalone', note: 'year end' });
    expect((await storeKeys()).some((k) => k.startsWith(`${d.id}/`))).toBe(false);
    const rows = await writer.stop();
    expect(rows).toBeGreaterThan(0);
  }, 120_000);
});

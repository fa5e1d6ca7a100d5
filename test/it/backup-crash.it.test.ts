/**
 * The backup crash matrix (issue #13 acceptance "Crash"): `tidemark backup run` into a real versitygw while a
 * writer runs on a real MariaDB 10.11, killed with SIGKILL at ≥ 20 random moments (seeded, printed), the victim
 * rotating between the tidemark process, mariadb-backup (the stream command) and the store server itself; the
 * type rotating between full, incremental and differential. After every kill:
 *   - `backup list` (a rebuild from the store) lists only sealed backups, each with every piece its manifest names
 *     present at the size the manifest says — never a partial backup;
 *   - the set of listed backups only grows by backups whose run exited 0.
 * Afterwards the next run succeeds, and `expire` (grace 0) leaves exactly the objects of listed backups: the
 * orphans of every killed run are collected.
 * MariaDB port 3830, versitygw port 7330.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupConfigYaml, s3StoreYaml, startBackupLab, stopBackupLab } from '../fixtures/backup-config.ts';
import { admin, REPO_ROOT } from '../fixtures/mariadb.ts';
import { prng } from '../fixtures/prng.ts';
import { CLI, nodeFirstPath, runCli } from '../fixtures/topology.ts';
import { killVersitygw, type S3Server, s3Client, startVersitygw } from '../fixtures/versitygw.ts';

const NAME = 'bk-crash';
const PORT = 3830;
const VGW_PORT = 7330;
const BUCKET = 'bkcrash';
const KILLS = 21;
const SEED = Number(process.env['TIDEMARK_CRASH_SEED'] ?? Date.now() % 100_000);
const instDir = resolve(process.env['TIDEMARK_RUN_DIR'] ?? resolve(REPO_ROOT, '.run'), 'mariadb', NAME);

let dir: string;
let cfg: string;
let s3: S3Server;
let conn: mysql.Connection;
let stopWriter: () => Promise<void> = async () => {};

interface Listed {
  id: string;
  type: string;
  pieces: Array<{ key: string; size: string }>;
}

async function storeObjects(): Promise<Map<string, number>> {
  const c = s3Client(s3);
  const out = new Map<string, number>();
  try {
    let token: string | undefined;
    do {
      const r = await c.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'crash/', ContinuationToken: token }));
      for (const o of r.Contents ?? []) out.set((o.Key as string).slice('crash/'.length), Number(o.Size));
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token !== undefined);
  } finally {
    c.destroy();
  }
  return out;
}

async function list(): Promise<Listed[]> {
  const r = await runCli(['backup', 'list', '--json', '-c', cfg], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`backup list exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout) as Listed[];
}

/** Every listed backup is whole: its manifest and every piece it names, at the named size. */
async function expectOnlyWholeBackups(listed: Listed[]): Promise<void> {
  const objects = await storeObjects();
  for (const b of listed) {
    expect(objects.has(`${b.id}/manifest.json`), `${b.id} is listed without its manifest`).toBe(true);
    for (const p of b.pieces) expect(objects.get(p.key), `${b.id}: piece ${p.key}`).toBe(Number(p.size));
  }
}

function writeConfig(): string {
  const wrapper = join(dir, 'stream.sh');
  // records mariadb-backup's pid so the test can kill the stream command itself
  writeFileSync(wrapper, `#!/bin/sh\nmariadb-backup "$@" &\necho $! > ${join(dir, 'bk.pid')}\nwait $!\n`, {
    mode: 0o755,
  });
  const path = join(dir, 'tidemark.yaml');
  const rest = '  jobs:\n    - name: crashy\n      store: vgw\n      type: full\n';
  writeFileSync(
    path,
    backupConfigYaml({
      port: PORT,
      unusedPort: 3831,
      dir,
      instDir,
      keyFile: join(dir, 'master.key'),
      command: [wrapper],
      stores: [s3StoreYaml('vgw', s3, BUCKET, 'crash/')],
      rest,
    }),
  );
  return path;
}

function startRun(type: string): { child: ChildProcess; done: Promise<{ code: number | null; err: string }> } {
  rmSync(join(dir, 'bk.pid'), { force: true });
  const child = spawn(CLI, ['backup', 'run', 'crashy', '--type', type, '-c', cfg], {
    cwd: REPO_ROOT,
    env: { ...process.env, PATH: nodeFirstPath() },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (d) => (err += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const done = new Promise<{ code: number | null; err: string }>((res) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      res({ code, err });
    }),
  );
  return { child, done };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  const lab = await startBackupLab({ name: NAME, port: PORT, vgwPort: VGW_PORT, bucket: BUCKET, rows: 4000 });
  ({ dir, s3, conn } = lab);
  await conn.query('CREATE TABLE bk.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB');
  cfg = writeConfig();
  const w = await admin(PORT);
  let run = true;
  const loop = (async () => {
    while (run) await w.query('INSERT INTO bk.t (v) VALUES (?)', ['w'.repeat(150)]).catch(() => sleep(50));
  })();
  stopWriter = async () => {
    run = false;
    await loop;
    await w.end();
  };
}, 180_000);

afterAll(async () => {
  await stopWriter();
  await stopBackupLab(NAME, { dir, conn });
});

describe('backup crash matrix', () => {
  it(`SIGKILL of tidemark, mariadb-backup or the store at ≥ ${KILLS} random points (seed ${SEED}): never a partial backup, the next run succeeds, expire collects the orphans`, async () => {
    console.log(`backup crash matrix: seed ${SEED} (TIDEMARK_CRASH_SEED to reproduce)`);
    const rand = prng(SEED);
    // calibrate: one whole full, so kills land inside a run's span
    const t0 = Date.now();
    const first = startRun('full');
    const r0 = await first.done;
    expect(r0.code, r0.err).toBe(0);
    const span = Date.now() - t0;
    let sealed = await list();
    expect(sealed.length).toBe(1);
    const victims = ['tidemark', 'mariadb-backup', 'store'] as const;
    const types = ['full', 'incremental', 'differential'] as const;
    const landed: Array<{ victim: string; type: string; atMs: number }> = [];
    for (let attempt = 0; landed.length < KILLS && attempt < KILLS * 3; attempt++) {
      const victim = victims[landed.length % victims.length] as (typeof victims)[number];
      const type = types[Math.floor(rand() * types.length)] as string;
      const atMs = Math.round(200 + rand() * Math.max(300, span * 0.85 - 200));
      const run = startRun(type);
      let finished = false;
      void run.done.then(() => {
        finished = true;
      });
      await sleep(atMs);
      let killed = false;
      if (!finished) {
        if (victim === 'tidemark') {
          killed = run.child.kill('SIGKILL');
        } else if (victim === 'mariadb-backup') {
          const pidFile = join(dir, 'bk.pid');
          if (existsSync(pidFile)) {
            try {
              process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
              killed = true;
            } catch {
              killed = false; // it had already ended
            }
          }
        } else {
          killVersitygw(NAME);
          killed = true;
        }
      }
      const r = await run.done;
      if (victim === 'store') startVersitygw(NAME, VGW_PORT);
      const before = new Set(sealed.map((b) => b.id));
      sealed = await list();
      await expectOnlyWholeBackups(sealed);
      const added = sealed.filter((b) => !before.has(b.id));
      // a killed run that still exited 0 finished before the kill took effect: it may add exactly one backup
      if (r.code !== 0) expect(added, `a failed run (${victim}) left a listed backup`).toEqual([]);
      else expect(added.length).toBeLessThanOrEqual(1);
      if (killed && r.code !== 0) landed.push({ victim, type, atMs });
    }
    console.log(`backup crash matrix: ${landed.length} kills landed mid-run`, JSON.stringify(landed));
    expect(landed.length).toBeGreaterThanOrEqual(KILLS);
    for (const v of victims) expect(landed.filter((l) => l.victim === v).length).toBeGreaterThanOrEqual(5);

    const last = startRun('incremental');
    const rl = await last.done;
    expect(rl.code, rl.err).toBe(0);
    sealed = await list();
    await expectOnlyWholeBackups(sealed);
    const sealedKeys = new Set(sealed.flatMap((b) => [`${b.id}/manifest.json`, ...b.pieces.map((p) => p.key)]));
    const orphans = [...(await storeObjects()).keys()].filter((k) => !sealedKeys.has(k) && !k.endsWith('/star.json'));
    console.log(`backup crash matrix: ${orphans.length} orphan objects before expire`);
    expect(orphans.length).toBeGreaterThan(0); // the killed runs did leave pieces behind
    await sleep(1100); // every orphan is older than the grace period (0) by a whole second
    const ex = await runCli(['backup', 'expire', 'crashy', '-c', cfg], { timeoutMs: 60_000 });
    expect(ex.code, ex.stderr).toBe(0);
    const kept = await list();
    expect(kept.map((b) => b.id)).toEqual(sealed.map((b) => b.id)); // no retention set: every sealed backup stays
    const expected = new Set(kept.flatMap((b) => [`${b.id}/manifest.json`, ...b.pieces.map((p) => p.key)]));
    const objects = [...(await storeObjects()).keys()].filter((k) => !k.endsWith('/star.json'));
    expect(objects.sort()).toEqual([...expected].sort());
  }, 600_000);
});

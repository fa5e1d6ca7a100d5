/**
 * Point-in-time restore on real MariaDB 10.11 (issue #13, scope 9): a seeded random workload on a source (seed
 * printed; PITR_SEED=N reproduces it); a full, two incrementals and a differential taken mid-workload, with 3 moments
 * after each of them (12 in all, at random intervals) at which the workload pauses and the GTID position,
 * per-table checksums and a wall-clock instant are recorded; the source's binlogs sealed as log backups
 * (test/fixtures/log-seal.ts, per LOGCONTRACT.md). Every moment is restored to twice, by its GTID and by its time,
 * in five walks: a chain restore to the walk's first moment into a fresh scratch server, then `replayFurther` to
 * each later moment (across later backups too) — each step's checksums those recorded, the server at that GTID.
 * The walks start on each part of the chain (full + logs; full → incremental; full → incremental → incremental;
 * full → differential): GTIDs of moments 0-5 from the full, 6-11 from the second incremental; times of moments
 * 0-2 from the full, 3-8 from the incremental, 9-11 from the differential. The command line restores to
 * a GTID after the differential; a target after the archive, going back, a wrong key and a missing log piece are
 * refused before anything is written.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../backup/manifest.ts';
import { MasterKey } from '../../backup/pipeline/keys.ts';
import {
  type PitrTarget,
  type PointInTimeResult,
  replayFurther,
  restoreToPoint,
  storeManifests,
} from '../../backup/restore/pitr.ts';
import { gtidAtOrBefore, parseGtidPos } from '../../backup/restore/pitr-plan.ts';
import type { ScratchServer } from '../../backup/restore/replay.ts';
import { DirStore } from '../../backup/store/dir.ts';
import { main } from '../../cli/main.ts';
import { TidemarkError } from '../../core/errors.ts';
import { takeBackup } from '../fixtures/backup-take.ts';
import { schemaChecksums } from '../fixtures/checksums.ts';
import { sealBinlogs } from '../fixtures/log-seal.ts';
import { admin, destroyInstance, REPO_ROOT, ROOT_PASSWORD, startInstance, stopInstance } from '../fixtures/mariadb.ts';
import { createWorkloadSchema, type Moment, PausableWorkload } from '../fixtures/pitr-workload.ts';
import { prng } from '../fixtures/prng.ts';

const SRC = 'pitr-src';
const SRC_PORT = 3860;
const SCRATCH = 'pitr-scratch';
const SCRATCH_PORT = 3861;
const SCHEMA = 'pt';
const run = resolve(process.env['TIDEMARK_RUN_DIR'] ?? resolve(REPO_ROOT, '.run'));
const srcDir = join(run, 'mariadb', SRC);
const scratchData = join(run, 'mariadb', SCRATCH, 'data');
const storeRoot = join(run, 'pitr-store');
const keyBytes = randomBytes(32);
const master = new MasterKey(keyBytes, 'test key');
const keyFile = join(run, 'pitr.key');
const cliData = join(run, 'pitr-cli-data');
const CLI_SCRATCH = `pitr-${SCRATCH_PORT}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let store: DirStore;
let conn: mysql.Connection;
let full: Manifest;
let incr: Manifest;
let incr2: Manifest;
let diff: Manifest;
let logs: Manifest[];
let manifests: Manifest[];
/** The moments after the full, the incremental, the second incremental and the differential (3 each). */
const PER_PART = 3;
const moments: Moment[] = [];

beforeAll(async () => {
  rmSync(storeRoot, { recursive: true, force: true });
  destroyInstance(SCRATCH);
  startInstance(SRC, SRC_PORT, { fresh: true });
  conn = await admin(SRC_PORT);
  await createWorkloadSchema(conn, SCHEMA, 2000);
  store = await DirStore.open(storeRoot);
  const seed = Number(process.env['PITR_SEED'] ?? Date.now() % 100_000);
  console.log(`restore-pitr: workload seed ${seed} (PITR_SEED=${seed} reproduces it)`);
  const rand = prng(seed ^ 0x5eed);
  const w = new PausableWorkload({ schema: SCHEMA, port: SRC_PORT, seed, rows: 2000, probe: conn });
  w.start();
  const take = { store, master, instDir: srcDir, job: 'db' };
  const pause = (): Promise<void> => sleep(200 + Math.floor(rand() * 500));
  const part = async (): Promise<void> => {
    for (let i = 0; i < PER_PART; i++) {
      await pause();
      moments.push(await w.instant());
    }
    await pause();
  };
  let writes = 0;
  try {
    await sleep(300);
    full = await takeBackup({ ...take, type: 'full' });
    await part();
    incr = await takeBackup({ ...take, type: 'incremental', parent: full });
    await part();
    incr2 = await takeBackup({ ...take, type: 'incremental', parent: incr });
    await part();
    diff = await takeBackup({ ...take, type: 'differential', parent: full });
    await part();
  } finally {
    writes = await w.stop();
  }
  logs = await sealBinlogs({ store, master, instDir: srcDir, job: 'db-logs', groupsPerSegment: 40 });
  manifests = await storeManifests(store);
  console.log(
    `restore-pitr: ${writes} writes; full at ${full.gtid}, incrementals at ${incr.gtid} ${incr2.gtid}, ` +
      `differential at ${diff.gtid}; moments at ` +
      `${moments.map((m) => m.gtid).join(' ')}; ${logs.length} log segments`,
  );
}, 240_000);

afterAll(async () => {
  await conn?.end();
  stopInstance(SCRATCH);
  stopInstance(SRC);
  destroyInstance(SCRATCH);
  destroyInstance(SRC);
  stopInstance(CLI_SCRATCH);
  destroyInstance(CLI_SCRATCH);
  rmSync(storeRoot, { recursive: true, force: true });
  rmSync(cliData, { recursive: true, force: true });
  rmSync(keyFile, { force: true });
});

const server: ScratchServer = { host: '127.0.0.1', port: SCRATCH_PORT, user: 'root', password: ROOT_PASSWORD };
type By = 'gtid' | 'time';
const targetOf = (m: Moment, by: By): PitrTarget => (by === 'gtid' ? { gtid: m.gtid } : { time: m.at });
const CHAINS = ['full + logs', 'full → incremental', 'full → incremental → incremental', 'full → differential'];
const chainOf = (part: number): string[] =>
  [[full.id], [full.id, incr.id], [full.id, incr.id, incr2.id], [full.id, diff.id]][part] as string[];
/** Moments [from, to) reached by `by`, the first by a chain restore (on chain `part`), the others by replayFurther. */
const WALKS: readonly { by: By; from: number; to: number; part: number }[] = [
  { by: 'gtid', from: 0, to: 2 * PER_PART, part: 0 },
  { by: 'gtid', from: 2 * PER_PART, to: 4 * PER_PART, part: 2 },
  { by: 'time', from: 0, to: PER_PART, part: 0 },
  { by: 'time', from: PER_PART, to: 3 * PER_PART, part: 1 },
  { by: 'time', from: 3 * PER_PART, to: 4 * PER_PART, part: 3 },
];

/** The scratch server's GTID position and checksums. */
async function scratchState(): Promise<{ gtid: string; checksums: Moment['checksums'] }> {
  const c = await admin(SCRATCH_PORT);
  try {
    const [[g]] = (await c.query('SELECT @@gtid_binlog_pos AS g')) as unknown as [[{ g: string }]];
    return { gtid: g.g, checksums: await schemaChecksums(c, SCHEMA) };
  } finally {
    await c.end();
  }
}

interface Step {
  /** The GTID the restore or replay says it reached, and what the server says and holds. */
  readonly reached: string;
  readonly gtid: string;
  readonly checksums: Moment['checksums'];
}

/**
 * One walk: a chain restore to its first moment into a fresh scratch server, then replayFurther to each later
 * moment (targets by GTID or by time); `then` runs on the server at the last moment.
 */
async function walk(w: (typeof WALKS)[number], then?: (at: PointInTimeResult['cursor']) => Promise<void>) {
  const by = w.by;
  destroyInstance(SCRATCH);
  const ms = moments.slice(w.from, w.to);
  const lines: string[] = [];
  const onLine = (l: string): number => lines.push(l);
  const t0 = Date.now();
  try {
    const r = await restoreToPoint({
      store,
      master,
      job: 'db',
      logJob: 'db-logs',
      target: targetOf(ms[0] as Moment, by),
      into: scratchData,
      startServer: async () => {
        startInstance(SCRATCH, SCRATCH_PORT);
        return server;
      },
      onLine,
    });
    const steps: Step[] = [{ reached: r.gtid, ...(await scratchState()) }];
    const t1 = Date.now();
    let cursor = r.cursor;
    for (const m of ms.slice(1)) {
      const f = await replayFurther({
        store,
        master,
        logJob: 'db-logs',
        from: cursor,
        target: targetOf(m, by),
        server,
        near: scratchData,
        manifests, // listed once: the store does not change while the part is walked
        onLine,
      });
      cursor = f.cursor;
      steps.push({ reached: f.gtid, ...(await scratchState()) });
    }
    await then?.(cursor);
    const secs = (t: number): string => ((Date.now() - t) / 1000).toFixed(1);
    console.log(
      `restore-pitr: moments ${w.from}-${w.to - 1} by ${by} from ${CHAINS[w.part]}: restore ${r.seconds.toFixed(1)} s, ${ms.length - 1} further in ` +
        `${secs(t1)} s, ${secs(t0)} s in all`,
    );
    return { r, lines, steps, ms };
  } finally {
    stopInstance(SCRATCH);
  }
}

describe('restore --to-gtid / --to-time to every moment over full → incremental → incremental, full → differential + logs', () => {
  it('the moments are distinct states, three after each backup', () => {
    expect(moments).toHaveLength(4 * PER_PART);
    expect(new Set(moments.map((m) => JSON.stringify(m.checksums))).size).toBe(moments.length);
    expect(new Set(moments.map((m) => m.at.getTime())).size).toBe(moments.length);
    expect(logs.map((m) => Number(m.log?.seq))).toEqual(logs.map((_, i) => i + 1));
    expect(logs.length).toBeGreaterThan(3);
  });

  for (const w of WALKS) {
    const { by, part } = w;
    it(`moments ${w.from}-${w.to - 1} by ${by === 'gtid' ? 'GTID' : 'wall-clock time'}: restored from ${CHAINS[part]}, then replayed further`, async () => {
      let refusedBack: unknown = null;
      const { r, lines, steps, ms } = await walk(w, async (cursor) => {
        if (w.from !== 0 || by !== 'gtid') return;
        // Going back is refused before anything is replayed; the server stays at the last moment.
        refusedBack = await replayFurther({
          store,
          master,
          logJob: 'db-logs',
          from: cursor,
          target: { gtid: (moments[0] as Moment).gtid },
          server,
          near: scratchData,
        }).then(
          () => null,
          (e: unknown) => e,
        );
        expect((await scratchState()).gtid).toBe(cursor.gtid);
      });
      expect(r.chain).toEqual(chainOf(part));
      expect(r.segments).toBeGreaterThan(0);
      expect(steps).toHaveLength(ms.length);
      for (const [i, m] of ms.entries()) {
        const s = steps[i] as Step;
        expect(s.reached, `moment ${w.from + i}`).toBe(m.gtid);
        expect(s.gtid, `moment ${w.from + i}`).toBe(m.gtid);
        expect(s.checksums, `moment ${w.from + i}`).toEqual(m.checksums);
      }
      if (by === 'time') {
        for (const m of ms)
          expect(lines).toContain(`${m.at.toISOString()} → GTID ${m.gtid} (the last committed at or before it)`);
      }
      expect(lines.filter((l) => l.startsWith('further '))).toHaveLength(ms.length - 1);
      if (w.from === 0 && by === 'gtid') {
        expect(refusedBack).toBeInstanceOf(TidemarkError);
        expect((refusedBack as TidemarkError).code).toBe('BACKUP_PITR_BEFORE');
        expect(lines.some((l) => l.startsWith(`replaying ${full.binlog?.file}:${full.binlog?.position}`))).toBe(true);
        // Replay starts at the segment holding the full's binlog position; the file's first segment only for its header.
        const pos = full.binlog?.position as bigint;
        const holding = logs.find((l) => l.log?.binlogFile === full.binlog?.file && (l.log?.endPos as bigint) >= pos);
        const firstSeq = holding?.log?.seq as bigint;
        const plan = lines.find((l) => l.startsWith('point in time')) ?? '';
        expect(plan).toContain(` seq ${firstSeq}..`);
        expect(plan.includes(': seq 1)')).toBe(firstSeq > 1n);
      }
    }, 240_000);
  }

  it('tidemark restore --job --to-gtid (after the differential): the command line starts the scratch server', async () => {
    const m = moments[3 * PER_PART + 1] as Moment;
    writeFileSync(keyFile, `${keyBytes.toString('hex')}\n`, { mode: 0o600 });
    destroyInstance(CLI_SCRATCH);
    rmSync(cliData, { recursive: true, force: true });
    let stdout = '';
    let stderr = '';
    const argv = ['restore', '--job', 'db', '--log-job', 'db-logs', '--to-gtid', m.gtid, '--into', cliData];
    const code = await main(
      [...argv, '--store-dir', storeRoot, '--key-file', keyFile, '--scratch-port', String(SCRATCH_PORT)],
      {
        stdout: { write: (t: string) => (stdout += t) },
        stderr: { write: (t: string) => (stderr += t) },
        env: { TIDEMARK_SCRATCH_PASSWORD: ROOT_PASSWORD },
        signal: new AbortController().signal,
      },
    );
    try {
      expect(code, stderr).toBe(0);
      expect(stdout).toContain(`chain of 2 (full → differential)`);
      expect(stdout).toContain(`applying differential ${diff.id}`);
      expect(stdout).toContain(`done: the server on ${cliData} is at GTID ${m.gtid}`);
      expect(stdout).toContain(`the scratch server ${CLI_SCRATCH} runs on 127.0.0.1:${SCRATCH_PORT}`);
      const c = await admin(SCRATCH_PORT);
      try {
        expect(await schemaChecksums(c, SCHEMA)).toEqual(m.checksums);
      } finally {
        await c.end();
      }
    } finally {
      stopInstance(CLI_SCRATCH);
    }
  }, 240_000);

  it('a target after the archive is refused before anything is written', async () => {
    destroyInstance(SCRATCH);
    const last = logs.at(-1)?.log?.lastGtid as string;
    const [d, s, q] = last.split('-');
    const err = await restoreToPoint({
      store,
      master,
      job: 'db',
      logJob: 'db-logs',
      target: { gtid: `${d}-${s}-${BigInt(q as string) + 1n}` },
      into: scratchData,
      startServer: async () => {
        throw new Error('must not start');
      },
    }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).code).toBe('BACKUP_PITR_AFTER');
    expect(existsSync(scratchData)).toBe(false);
  });

  it('a wrong master key or a missing log segment piece is refused before any output', async () => {
    destroyInstance(SCRATCH);
    const m = moments.at(-1) as Moment;
    const attempt = async (key: MasterKey) => {
      const lines: string[] = [];
      const err = await restoreToPoint({
        store,
        master: key,
        job: 'db',
        logJob: 'db-logs',
        target: { gtid: m.gtid },
        into: scratchData,
        startServer: async () => {
          throw new Error('must not start');
        },
        onLine: (l) => lines.push(l),
      }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TidemarkError);
      expect(lines.filter((l) => !l.startsWith('point in time'))).toEqual([]);
      expect(existsSync(scratchData)).toBe(false);
      return err as TidemarkError;
    };
    expect((await attempt(new MasterKey(randomBytes(32), 'other key'))).code).toBe('BACKUP_KEY');
    // The segment that reaches the target (the workload ran on after the last moment: later ones are not needed)
    const reaching = logs.find((l) => gtidAtOrBefore(parseGtidPos(m.gtid), parseGtidPos(l.gtid as string)));
    const last = (reaching as Manifest).pieces[0] as Manifest['pieces'][number];
    renameSync(join(storeRoot, last.key), join(storeRoot, `${last.key}.aside`));
    try {
      const err = await attempt(master);
      expect(err.code).toBe('BACKUP_INTEGRITY');
      expect(err.message).toContain(`piece '${last.key}'`);
    } finally {
      renameSync(join(storeRoot, `${last.key}.aside`), join(storeRoot, last.key));
    }
  });
});

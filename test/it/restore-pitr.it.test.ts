/**
 * Point-in-time restore on real MariaDB 10.11 (issue #13, scope 9): a seeded random workload on a source; a full,
 * two incrementals and a differential taken mid-workload, between the moments; at 5 moments the workload pauses
 * and the GTID position and per-table checksums are recorded (two of them at a wall-clock instant); the source's
 * binlogs sealed as log backups (test/fixtures/log-seal.ts, per LOGCONTRACT.md). Restores to 3 GTIDs (full + logs;
 * full → incremental + logs; full → differential + logs, through `tidemark restore --job`) and to one wall-clock
 * moment (full → incremental → incremental + logs), each into a fresh scratch server → the checksums recorded at
 * that moment, and the server at that GTID. A target after the archive, a wrong key and a missing log piece are
 * refused before anything is written.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../backup/manifest.ts';
import { MasterKey } from '../../backup/pipeline/keys.ts';
import { restoreToPoint, type PitrTarget } from '../../backup/restore/pitr.ts';
import { DirStore } from '../../backup/store/dir.ts';
import { main } from '../../cli/main.ts';
import { TidemarkError } from '../../core/errors.ts';
import { takeBackup } from '../fixtures/backup-take.ts';
import { schemaChecksums } from '../fixtures/checksums.ts';
import { sealBinlogs } from '../fixtures/log-seal.ts';
import { admin, destroyInstance, REPO_ROOT, ROOT_PASSWORD, startInstance, stopInstance } from '../fixtures/mariadb.ts';
import { createWorkloadSchema, type Moment, PausableWorkload } from '../fixtures/pitr-workload.ts';

const SRC = 'pitr-src';
const SRC_PORT = 3815;
const SCRATCH = 'pitr-scratch';
const SCRATCH_PORT = 3816;
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
const moments: Moment[] = [];

beforeAll(async () => {
  rmSync(storeRoot, { recursive: true, force: true });
  destroyInstance(SCRATCH);
  startInstance(SRC, SRC_PORT, { fresh: true });
  conn = await admin(SRC_PORT);
  await createWorkloadSchema(conn, SCHEMA, 2000);
  store = await DirStore.open(storeRoot);
  const seed = Number(process.env['PITR_SEED'] ?? Date.now() % 100_000);
  console.log(`restore-pitr: workload seed ${seed}`);
  const w = new PausableWorkload({ schema: SCHEMA, port: SRC_PORT, seed, rows: 2000, probe: conn });
  w.start();
  const take = { store, master, instDir: srcDir, job: 'db' };
  let writes = 0;
  try {
    await sleep(300);
    full = await takeBackup({ ...take, type: 'full' });
    await sleep(200 + Math.floor(Math.random() * 300));
    moments.push(await w.moment());
    await sleep(200 + Math.floor(Math.random() * 300));
    moments.push(await w.instant());
    incr = await takeBackup({ ...take, type: 'incremental', parent: full });
    for (let i = 0; i < 3; i++) {
      await sleep(200 + Math.floor(Math.random() * 400));
      moments.push(i === 1 ? await w.instant() : await w.moment());
      if (i === 0) incr2 = await takeBackup({ ...take, type: 'incremental', parent: incr });
      if (i === 1) diff = await takeBackup({ ...take, type: 'differential', parent: full });
    }
  } finally {
    writes = await w.stop();
  }
  logs = await sealBinlogs({ store, master, instDir: srcDir, job: 'db-logs', groupsPerSegment: 40 });
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

/** Restores to `target` into a fresh scratch server; returns the result and the scratch server's checksums. */
async function restoreTo(target: PitrTarget) {
  destroyInstance(SCRATCH);
  const lines: string[] = [];
  const t0 = Date.now();
  try {
    const r = await restoreToPoint({
      store,
      master,
      job: 'db',
      logJob: 'db-logs',
      target,
      into: scratchData,
      startServer: async () => {
        startInstance(SCRATCH, SCRATCH_PORT);
        return { host: '127.0.0.1', port: SCRATCH_PORT, user: 'root', password: ROOT_PASSWORD };
      },
      onLine: (l) => lines.push(l),
    });
    const c = await admin(SCRATCH_PORT);
    try {
      const [[g]] = (await c.query('SELECT @@gtid_binlog_pos AS g')) as unknown as [[{ g: string }]];
      console.log(`restore-pitr: to ${JSON.stringify(target)} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      return { r, lines, gtid: g.g, checksums: await schemaChecksums(c, SCHEMA) };
    } finally {
      await c.end();
    }
  } finally {
    stopInstance(SCRATCH);
  }
}

describe('restore --to-gtid / --to-time over full → incremental → incremental, full → differential + logs', () => {
  it('the moments are distinct states after the full, two before and three after the incremental', () => {
    expect(moments).toHaveLength(5);
    expect(new Set(moments.map((m) => JSON.stringify(m.checksums))).size).toBe(5);
    expect(logs.map((m) => Number(m.log?.seq))).toEqual(logs.map((_, i) => i + 1));
    expect(logs.length).toBeGreaterThan(3);
  });

  it('to a GTID before the incremental: full + logs, the checksums recorded there', async () => {
    const m = moments[0] as Moment;
    const got = await restoreTo({ gtid: m.gtid });
    expect(got.r.backup).toBe(full.id);
    expect(got.r.segments).toBeGreaterThan(0);
    expect(got.gtid).toBe(m.gtid);
    expect(got.checksums).toEqual(m.checksums);
    expect(got.lines.some((l) => l.startsWith(`replaying ${full.binlog?.file}:${full.binlog?.position}`))).toBe(true);
    // Replay starts at the segment holding the full's binlog position; the file's first segment only for its header.
    const pos = full.binlog?.position as bigint;
    const holding = logs.find((l) => l.log?.binlogFile === full.binlog?.file && (l.log?.endPos as bigint) >= pos);
    const firstSeq = holding?.log?.seq as bigint;
    const plan = got.lines.find((l) => l.startsWith('point in time')) ?? '';
    expect(plan).toContain(` seq ${firstSeq}..`);
    expect(plan.includes(': seq 1)')).toBe(firstSeq > 1n);
  }, 240_000);

  it('to a GTID after the incremental: full → incremental + logs', async () => {
    const m = moments[2] as Moment;
    const got = await restoreTo({ gtid: m.gtid });
    expect(got.r.chain).toEqual([full.id, incr.id]);
    expect(got.gtid).toBe(m.gtid);
    expect(got.checksums).toEqual(m.checksums);
  }, 240_000);

  it('tidemark restore --job --to-gtid (after the differential): the command line starts the scratch server', async () => {
    const m = moments[4] as Moment;
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

  it('to a wall-clock moment: the last GTID committed at or before it', async () => {
    const m = moments[3] as Moment;
    const got = await restoreTo({ time: m.at });
    expect(got.r.chain).toEqual([full.id, incr.id, incr2.id]);
    expect(got.r.gtid).toBe(m.gtid);
    expect(got.lines[0]).toContain(`→ GTID ${m.gtid}`);
    expect(got.checksums).toEqual(m.checksums);
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
    const m = moments[4] as Moment;
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
    const last = (logs.at(-1) as Manifest).pieces[0] as Manifest['pieces'][number];
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

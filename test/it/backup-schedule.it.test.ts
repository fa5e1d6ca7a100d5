/**
 * Scheduled backups and copies against a real MariaDB 10.11 (its mariadb-backup), a directory store and a real
 * versitygw: the scheduler loop of `tidemark run` (node/backup-loop.ts, with the real runner) fires a job every
 * 2 s (croner's seconds field) whose stream command takes > 2 s, so it takes real full backups AND overruns:
 * each trigger during a run is skipped, logged and counted (tidemark_backup_skipped_total); `expire` after each
 * run applies `chains: 1`. Then `tidemark backup copy` from the directory store to versitygw with a config whose
 * master key does not exist (copies are verified by the manifests' hashes, without the key): a flipped byte in a
 * source piece is refused naming the piece; a copy aborted mid-piece resumes, reusing the pieces already there.
 * MariaDB port 3820, versitygw port 7325.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pipeline, Transform } from 'node:stream';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type mysql from 'mysql2/promise';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyBackups } from '../../backup/copy/copy.ts';
import type { Manifest } from '../../backup/manifest.ts';
import type { BackupStore } from '../../backup/store.ts';
import { DirStore } from '../../backup/store/dir.ts';
import { S3Store } from '../../backup/store/s3.ts';
import { loadConfig } from '../../config/config.ts';
import { backupLoop, SCHEDULE_FILE } from '../../node/backup-loop.ts';
import {
  backupConfigYaml,
  dirStoreYaml,
  s3StoreYaml,
  startBackupLab,
  stopBackupLab,
} from '../fixtures/backup-config.ts';
import { REPO_ROOT } from '../fixtures/mariadb.ts';
import { runCli, startRun, stopRun } from '../fixtures/topology.ts';
import { type S3Server, s3Client } from '../fixtures/versitygw.ts';
import { capturedLog, sealedInDir } from '../fixtures/backup-probe.ts';

const NAME = 'bk-sched';
const PORT = 3820;
const VGW_PORT = 7325;
const BUCKET = 'bksched';
const instDir = resolve(process.env['TIDEMARK_RUN_DIR'] ?? resolve(REPO_ROOT, '.run'), 'mariadb', NAME);

let dir: string;
let s3: S3Server;
let conn: mysql.Connection;

function config(file: string, keyFile: string, once?: string): string {
  const path = join(dir, file);
  const yaml = backupConfigYaml({
    port: PORT,
    unusedPort: 3821,
    dir,
    instDir,
    keyFile,
    // a stream command that takes > 2 s before mariadb-backup even starts: every run overruns the 2 s schedule
    command: ['bash', '-c', 'sleep 2.5; exec mariadb-backup "$@"', 'mariadb-backup'],
    stores: [dirStoreYaml('local', join(dir, 'store')), s3StoreYaml('far', s3, BUCKET, 'copy/')],
    rest: `  jobs:
    - name: nightly
      store: local
      type: full
      schedule:
        cron: "*/2 * * * * *"
        time_zone: Europe/Paris
      retention:
        chains: 1
${once === undefined ? '' : `    - name: once\n      store: local\n      type: full\n      schedule:\n        at: "${once}"\n`}  copies:
    - name: off
      from: local
      to: far
`,
  });
  writeFileSync(path, yaml);
  return path;
}

async function cli(args: string[], file: string): Promise<{ code: number | null; out: string }> {
  const r = await runCli([...args, '-c', file], { timeoutMs: 120_000 });
  return { code: r.code, out: r.stdout + r.stderr };
}

const sealedLocal = (): Manifest[] => sealedInDir(join(dir, 'store'));

beforeAll(async () => {
  ({ dir, s3, conn } = await startBackupLab({ name: NAME, port: PORT, vgwPort: VGW_PORT, bucket: BUCKET, rows: 6000 }));
}, 120_000);

afterAll(() => stopBackupLab(NAME, { dir, s3, conn }));

describe('scheduled backups and copies', () => {
  it('fires real backups on schedule, skips and logs the overrun triggers, applies chains: 1 after each run', async () => {
    const cfg = loadConfig(config('tidemark.yaml', join(dir, 'master.key')));
    const { log, lines } = capturedLog();
    const registry = new Registry();
    const ac = new AbortController();
    const loop = backupLoop(cfg, log, ac.signal, registry);
    const done = () => lines.filter((l) => l['msg'] === "job 'nightly': scheduled run done");
    const deadline = Date.now() + 60_000;
    while (done().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    ac.abort();
    await loop;
    const failed = lines.filter((l) => l['level'] === 50);
    expect(failed, JSON.stringify(failed)).toEqual([]);
    expect(done().length).toBeGreaterThanOrEqual(2);

    const skips = lines.filter((l) => l['reason'] === 'overrun');
    expect(skips.length).toBeGreaterThanOrEqual(1);
    expect(String(skips[0]?.['msg'])).toMatch(
      /job 'nightly': the run started at .* is still going .* skipping the trigger of/,
    );
    const metric = await registry.getSingleMetricAsString('tidemark_backup_skipped_total');
    const counted = Number(/reason="overrun"} (\d+)/.exec(metric)?.[1] ?? 0);
    expect(counted).toBe(skips.length);

    // chains: 1 — after the second run only the newest full is sealed; the first was expired
    const ids = done().map((l) => String(l['detail']).split(';')[0]);
    expect(done()[1]?.['detail']).toMatch(/; expired 1$/);
    const sealed = sealedLocal();
    expect(sealed.map((m) => m.type)).toEqual(['full']);
    expect(sealed[0]?.id).toBe(ids[ids.length - 1]);
    const state = JSON.parse(readFileSync(join(cfg.backup?.catalog_dir as string, SCHEDULE_FILE), 'utf8'));
    expect(state.items[0]).toMatchObject({ kind: 'job', name: 'nightly', running: null });
    expect(state.items[0].runs).toBe(done().length);
    expect(state.items[0].skipped).toBe(skips.length);
  }, 90_000);

  it('copies to versitygw without the key: a flipped byte is refused naming the piece; an aborted copy resumes', async () => {
    const nokey = config('nokey.yaml', join(dir, 'no-such.key'));
    const [m] = sealedLocal() as [Manifest];
    expect(m.pieces.length).toBeGreaterThanOrEqual(3);

    // a flipped byte in the source's second piece: refused, naming backup and piece; no manifest in the copy
    const victim = join(dir, 'store', m.pieces[1]?.key as string);
    const good = readFileSync(victim);
    const bad = Buffer.from(good);
    bad[100] = (bad[100] as number) ^ 0x40;
    writeFileSync(victim, bad);
    const refused = await cli(['backup', 'copy', 'off'], nokey);
    expect(refused.code).not.toBe(0);
    expect(refused.out).toContain(`backup '${m.id}' piece '${m.pieces[1]?.key}'`);
    expect(refused.out).toContain('does not match its manifest (SHA-256');
    writeFileSync(victim, good);

    // a copy aborted while the third piece streams: no manifest in the copy
    const from = await DirStore.open(join(dir, 'store'));
    const to = await S3Store.open({
      endpoint: s3.endpoint,
      region: s3.region,
      bucket: BUCKET,
      prefix: 'copy/',
      forcePathStyle: true,
      credentials: s3.credentials,
    });
    const ac = new AbortController();
    const third = m.pieces[2]?.key as string;
    const slow: BackupStore = Object.assign(Object.create(from) as BackupStore, {
      get: async (key: string) => {
        const body = await from.get(key);
        if (key !== third) return body;
        // the link is cut once the third piece's first bytes are on their way
        const cut = new Transform({
          transform(chunk: Buffer, _e, cb) {
            ac.abort(new Error('link cut'));
            cb(null, chunk);
          },
        });
        return pipeline(body, cut, () => undefined);
      },
      list: (p: string) => from.list(p),
    });
    await expect(copyBackups({ from: slow, to, dryRun: false, signal: ac.signal })).rejects.toThrow();
    expect(await to.head(`${m.id}/manifest.json`)).toBeNull();
    expect(await to.head(third)).toBeNull();
    await to.close();

    const resumed = await cli(['backup', 'copy', 'off', '--json'], nokey);
    expect(resumed.code, resumed.out).toBe(0);
    const report = JSON.parse(resumed.out.trim().split('\n').pop() as string);
    expect(report.copied).toHaveLength(1);
    expect(report.copied[0]).toMatchObject({ id: m.id, pieces: m.pieces.length });
    expect(report.copied[0].copiedPieces).toBe(m.pieces.length - 2); // the first two were there, verified

    // every object of the copy is the source's, byte for byte (by hash)
    const c = s3Client(s3);
    try {
      for (const k of [...m.pieces.map((p) => p.key), `${m.id}/manifest.json`]) {
        const r = await c.send(new GetObjectCommand({ Bucket: BUCKET, Key: `copy/${k}` }));
        const got = createHash('sha256')
          .update(await (r.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray())
          .digest('hex');
        expect(got, k).toBe(
          createHash('sha256')
            .update(readFileSync(join(dir, 'store', k)))
            .digest('hex'),
        );
      }
    } finally {
      c.destroy();
    }
    const listed = JSON.parse((await cli(['backup', 'list', '--json'], nokey)).out) as { id: string; store: string }[];
    expect(listed.filter((b) => b.id === m.id).map((b) => b.store)).toEqual(['local', 'far']);
  }, 90_000);

  it('tidemark run at the source site runs a one-off job at its moment; tidemark status shows it', async () => {
    const at = new Date(Date.now() + 8000).toISOString().replace(/\.\d+Z$/, 'Z');
    const cfg = config('run.yaml', join(dir, 'master.key'), at);
    // only the one-off is meant here: the recurring job is left out of this config by giving it no schedule
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace(/ {6}schedule:\n {8}cron: .*\n {8}time_zone: .*\n/, ''));
    const run = startRun(cfg, ['--only', 'capture']);
    const state = join(dir, 'journal', 'backup-catalog', SCHEDULE_FILE);
    let item: { name: string; runs: number; last: { ok: boolean; detail: string } | null } | undefined;
    try {
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline && run.exitCode === null) {
        try {
          item = JSON.parse(readFileSync(state, 'utf8')).items.find((i: { name: string }) => i.name === 'once');
        } catch {}
        if (item?.last !== null && item?.last !== undefined) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(item?.last, (run as unknown as { lastStderr: () => string }).lastStderr()).toMatchObject({ ok: true });
      const status = JSON.parse((await cli(['status', '--json'], cfg)).out.trim().split('\n').pop() as string);
      expect(status.backups.stale).toBe(false);
      expect(status.backups.items).toHaveLength(1);
      expect(status.backups.items[0]).toMatchObject({ kind: 'job', name: 'once', runs: 1, next: null });
    } finally {
      await stopRun(run);
    }
    const once = sealedLocal().filter((m) => m.job === 'once');
    expect(once.map((m) => [m.type, m.id])).toEqual([['full', item?.last?.detail]]);
    expect(once[0]?.startedAt.getTime()).toBeGreaterThanOrEqual(new Date(at).getTime() - 1000);
  }, 90_000);
});

/**
 * Scheduled drills and the forced full after a log gap, on real MariaDB 10.11 (its mariadb-backup) and a directory
 * store, with the two backup parts of `tidemark run` at the primary's site (node/supervisor.ts starts exactly
 * these: backupLoop and backupLogsLoop, here in-process so the test reads their log lines and prom-client registry):
 *   (a) a drill scheduled every 3 s (croner seconds field) of a job with logs → drills pass (two in a row), are in
 *       `tidemark drill JOB --history`, and the status lines show it; a flipped byte in a piece of the full → the
 *       next scheduled drill fails: the alarm line (error level, the job, the failure naming the piece) and
 *       tidemark_backup_drill_last_ok{job} = 0;
 *   (b) the loops stopped, FLUSH + PURGE BINARY LOGS on the source (the archive's last file is gone), the loops
 *       started again → the gap alarm (needsFull, tidemark_backup_log_gaps_total), a new forced full in the store,
 *       and log segments after a seq hole.
 * MariaDB port 3870 (source), 3871 (the drill's scratch server).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type mysql from 'mysql2/promise';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../backup/manifest.ts';
import { runJob } from '../../backup/run/job.ts';
import { backupScheduleLines, readBackupSchedule } from '../../cli/commands/status-backups.ts';
import { backupAccount, type Config, loadConfig, type ResolvedBackup } from '../../config/config.ts';
import { backupLoop } from '../../node/backup-loop.ts';
import { backupLogsLoop } from '../../node/backup-logs-loop.ts';
import { backupConfigYaml, dirStoreYaml } from '../fixtures/backup-config.ts';
import { admin, destroyInstance, REPO_ROOT, startInstance, stopInstance } from '../fixtures/mariadb.ts';
import { runCli } from '../fixtures/topology.ts';
import { capturedLog, sealedInDir } from '../fixtures/backup-probe.ts';

const NAME = 'bk-drillsched';
const PORT = 3870;
const SCRATCH_PORT = 3871;
const SCRATCH = `pitr-${SCRATCH_PORT}`;
const instDir = resolve(process.env['TIDEMARK_RUN_DIR'] ?? resolve(REPO_ROOT, '.run'), 'mariadb', NAME);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let dir: string;
let cfgFile: string;
let cfg: Config;
let conn: mysql.Connection;

/** The two backup parts of `tidemark run`, with their log lines and metrics. */
function startLoops(o: { drills: boolean }) {
  const { log, lines } = capturedLog();
  const registry = new Registry();
  const ac = new AbortController();
  const b = cfg.backup as ResolvedBackup;
  const c = o.drills ? cfg : { ...cfg, backup: { ...b, drills: [] } };
  const parts = [backupLoop(c, log, ac.signal, registry), backupLogsLoop(c, log, ac.signal, registry)];
  return {
    lines,
    registry,
    stop: async () => {
      ac.abort();
      await Promise.all(parts);
    },
  };
}

/** Polls `fn` until it returns a value; on a timeout the error shows the last log lines. */
async function waitFor<T>(
  what: string,
  fn: () => T | undefined,
  ms: number,
  lines: readonly Record<string, unknown>[] = [],
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) {
      const tail = lines.slice(-15).map((l) => `${String(l['msg'])} ${String(l['error'] ?? l['err'] ?? '')}`);
      throw new Error(`timed out waiting for ${what}; last log lines:\n${tail.join('\n')}`);
    }
    await sleep(250);
  }
}

async function metric(registry: Registry, name: string, job: string): Promise<number | undefined> {
  const m = await registry.getSingleMetric(name)?.get();
  return m?.values.find((v) => v.labels['job'] === job)?.value;
}

const sealed = (): Manifest[] => sealedInDir(join(dir, 'store'));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tidemark-drillsched-it-'));
  writeFileSync(join(dir, 'master.key'), randomBytes(32).toString('hex'), { mode: 0o600 });
  startInstance(NAME, PORT, { fresh: true });
  destroyInstance(SCRATCH);
  conn = await admin(PORT);
  await conn.query(
    'CREATE DATABASE bk; CREATE TABLE bk.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB;' +
      'INSERT INTO bk.t (v) SELECT CONCAT("row ", seq) FROM bk.seq_1_to_500;',
  );
  cfgFile = join(dir, 'tidemark.yaml');
  writeFileSync(
    cfgFile,
    backupConfigYaml({
      port: PORT,
      unusedPort: 3872,
      dir,
      instDir,
      keyFile: join(dir, 'master.key'),
      command: ['mariadb-backup'],
      stores: [dirStoreYaml('vault', join(dir, 'store'))],
      rest: `  logs:
    - name: binlogs
      store: vault
      segment_seconds: 1
      server_id: 4370
  jobs:
    - name: nightly
      store: vault
      type: full
      logs: binlogs
  drills:
    - job: nightly
      schedule: { cron: "*/3 * * * * *" }
      scratch_port: ${SCRATCH_PORT}
      wait_seconds: 30
`,
    }),
  );
  cfg = loadConfig(cfgFile);
  const b = cfg.backup as ResolvedBackup;
  await runJob(b, b.jobs[0] as ResolvedBackup['jobs'][number], {
    account: backupAccount(cfg),
    expire: false,
    log: pino({ level: 'silent' }),
  });
}, 180_000);

afterAll(async () => {
  await conn?.end();
  stopInstance(SCRATCH);
  destroyInstance(SCRATCH);
  stopInstance(NAME);
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('scheduled drills and the forced full after a log gap', () => {
  it('a scheduled drill passes and is in the history and status; a corrupt piece fails the next one loudly', async () => {
    const loops = startLoops({ drills: true });
    try {
      await conn.query('INSERT INTO bk.t (v) SELECT CONCAT("after ", seq) FROM bk.seq_1_to_50'); // replayed from logs
      const passed = await waitFor(
        'a passing drill',
        () => {
          // two passes in a row: each drill starts on a clean scratch instance (no binlog of the previous one)
          const ok = loops.lines.filter(
            (l) => l['kind'] === 'drill' && l['msg'] === "drill 'nightly': scheduled run done",
          );
          return ok.length >= 2 ? ok[1] : undefined;
        },
        120_000,
        loops.lines,
      );
      expect(String(passed['detail'])).toMatch(
        /^passed: 1 tables identical at GTID 0-\d+-\d+ \(backup .*-nightly-full-/,
      );
      expect(loops.lines.some((l) => l['alarm'] === 'drill-failed')).toBe(false);
      expect(await metric(loops.registry, 'tidemark_backup_drill_last_ok', 'nightly')).toBe(1);
      const status = backupScheduleLines(await readBackupSchedule(cfg)).join('\n');
      expect(status).toMatch(/drill nightly {2}cron '\*\/3 \* \* \* \* \*' UTC/);
      expect(status).toMatch(/last ok at \S+: passed: 1 tables identical/);

      const full = sealed().find((m) => m.type === 'full') as Manifest;
      const piece = join(dir, 'store', (full.pieces[0] as Manifest['pieces'][number]).key);
      const original = readFileSync(piece);
      const bytes = Buffer.from(original);
      bytes.writeUInt8(bytes.readUInt8(bytes.length >> 1) ^ 0x10, bytes.length >> 1);
      writeFileSync(piece, bytes);
      const seen = loops.lines.length;
      try {
        const alarm = await waitFor(
          'the drill alarm',
          () => loops.lines.slice(seen).find((l) => l['alarm'] === 'drill-failed'),
          120_000,
          loops.lines,
        );
        expect(alarm['level']).toBe(50); // error
        expect(alarm['job']).toBe('nightly');
        expect(String(alarm['error'])).toContain("drill of job 'nightly' FAILED (BACKUP_INTEGRITY)");
        expect(String(alarm['error'])).toContain(`piece '${full.pieces[0]?.key}'`);
        expect(await metric(loops.registry, 'tidemark_backup_drill_last_ok', 'nightly')).toBe(0);
      } finally {
        await loops.stop();
        writeFileSync(piece, original);
      }
      const status2 = backupScheduleLines(await readBackupSchedule(cfg)).join('\n');
      expect(status2).toMatch(/last FAILED at \S+: drill of job 'nightly' FAILED \(BACKUP_INTEGRITY\)/);
    } finally {
      await loops.stop();
    }
    const h = await runCli(['drill', 'nightly', '--history', '--json', '-c', cfgFile]);
    expect(h.code, h.stderr).toBe(0);
    const rows = h.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { ok: boolean; code: string | null });
    expect(rows[0]).toMatchObject({ ok: false, code: 'BACKUP_INTEGRITY' });
    expect(rows.some((r) => r.ok)).toBe(true);
  }, 300_000);

  it('PURGE BINARY LOGS while the archiver is down → the gap alarm, a forced full, segments after the hole', async () => {
    const before = sealed();
    const fullsBefore = before.filter((m) => m.type === 'full').length;
    const lastSeq = Math.max(...before.filter((m) => m.type === 'log').map((m) => Number(m.log?.seq)));
    await conn.query('INSERT INTO bk.t (v) VALUES ("while down")');
    await conn.query('FLUSH BINARY LOGS');
    const [st] = await conn.query<mysql.RowDataPacket[]>('SHOW MASTER STATUS');
    const current = String(st[0]?.['File']);
    // the server keeps a file that a dump thread still reads or that InnoDB has not checkpointed yet: retry
    let files: string[] = [];
    for (let i = 0; i < 100; i++) {
      await conn.query(`PURGE BINARY LOGS TO '${current}'`); // the archive's last file is gone
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SHOW BINARY LOGS');
      files = rows.map((r) => String(r['Log_name']));
      if (files.length === 1) break;
      await sleep(200);
    }
    expect(files).toEqual([current]);
    await conn.query('INSERT INTO bk.t (v) VALUES ("after the purge")');
    const loops = startLoops({ drills: false });
    try {
      const alarm = await waitFor(
        'the gap alarm',
        () => loops.lines.find((l) => l['alarm'] === 'log-gap'),
        60_000,
        loops.lines,
      );
      expect(alarm['level']).toBe(50);
      expect(alarm).toMatchObject({ job: 'binlogs', needsFull: true, fullsOf: ['nightly'] });
      expect(await metric(loops.registry, 'tidemark_backup_log_gaps_total', 'binlogs')).toBe(1);
      await waitFor(
        'the forced full',
        () => loops.lines.find((l) => l['msg'] === "forced full of 'nightly' sealed"),
        150_000,
        loops.lines,
      );
      const logs = await waitFor(
        'segments after the hole',
        () => {
          const l = sealed().filter((m) => m.type === 'log' && Number(m.log?.seq) > lastSeq);
          return l.length > 0 ? l : undefined;
        },
        60_000,
        loops.lines,
      );
      expect(sealed().filter((m) => m.type === 'full').length).toBe(fullsBefore + 1);
      const seqs = logs.map((m) => Number(m.log?.seq)).sort((x, y) => x - y);
      expect(seqs[0]).toBe(lastSeq + 2); // one seq left out: the hole stays visible
      expect(logs.every((m) => (m.log?.binlogFile ?? '') >= current)).toBe(true); // from the oldest binlog left
      expect(await metric(loops.registry, 'tidemark_backup_log_needs_full', 'binlogs')).toBe(0);
    } finally {
      await loops.stop();
    }
  }, 300_000);
});

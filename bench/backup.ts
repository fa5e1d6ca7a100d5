/**
 * Backup benchmark (issue #13): tidemark's full backup and restore beside the tools a DBA would otherwise pipe
 * together, in one run, on a sysbench-prepared datadir (`sysbench oltp_read_write prepare`, ~1 GiB by default),
 * one contender at a time (2 shared cores: running them at once would measure contention).
 *
 *   backup:  mariadb-backup --stream=mbstream > /dev/null              (the source's own speed)
 *            mariadb-backup --stream | zstd -1 -T2 > file              (the peer pipeline; its size is the yardstick)
 *            tidemark backup run → directory store                     (parse + zstd + AES-256-GCM + SHA-256)
 *            tidemark backup run → versitygw (S3, loopback)
 *   restore: zstd -d < file | mbstream -x, then mariadb-backup --prepare     (the peer)
 *            tidemark restore --backup ID --into DIR                         (fetch + verify + decrypt + the same)
 *   logs:    bench/backup-logs.ts, after these on the same source: PITR replay tx/s (tidemark restore --to-gtid vs a
 *            native replica and the `mariadb-binlog | mariadb` floor, from the same full) and the log archiver's
 *            commit → durable-in-store latency under a paced writer, with its peak RSS.
 *
 * Figures: MiB/s of datadir, ratios to the zstd pipeline (goal ≥ 0.8), stored bytes over zstd -1's (goal ≤ +2 %),
 * restore seconds per GiB and the ratio (goal ≤ 1.2), peak RSS of the tidemark process (VmHWM, goal < 256 MB)
 * and CPU seconds per GiB of the tidemark process and of mariadb-backup. The datadir is kept between runs
 * (instance `bench-bk`, port 3470; scratch/replica servers 3471-3473; versitygw port 7340).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { admin, REPO_ROOT, ROOT_PASSWORD, startInstance } from '../test/fixtures/mariadb.ts';
import { treeBytes } from '../test/fixtures/proc-tree.ts';
import { CLI } from '../test/fixtures/topology.ts';
import { createBucket, startVersitygw, stopVersitygw } from '../test/fixtures/versitygw.ts';
import { benchLogs, LOG_JOB } from './backup-logs.ts';
import { type Measured, measure, shellQuote } from './backup-measure.ts';

const PORT = 3470;
const VGW_PORT = 7340;
const NAME = 'bench-bk';
const TABLES = 8;
/** sysbench rows take ~230 bytes each on disk with their secondary index. */
const BYTES_PER_ROW = 230;

export interface BackupBenchOptions {
  readonly sizeMib: number;
  /** Transactions replayed by point-in-time restore and by the native replica. */
  readonly pitrTx: number;
  /** The paced writer of the log-archive latency figure: tx/s and seconds. */
  readonly archiveRate: number;
  readonly archiveS: number;
  readonly log: (s: string) => void;
}

const tableRows = (sizeMib: number): number =>
  Math.max(1000, Math.round((sizeMib * 1024 * 1024) / (TABLES * BYTES_PER_ROW)));

/** sysbench's connection and table options for the bench source (prepare, and the PITR workload). */
function sysbenchArgs(sizeMib: number): string[] {
  return [
    '--db-driver=mysql',
    '--mysql-host=127.0.0.1',
    `--mysql-port=${PORT}`,
    '--mysql-user=root',
    `--mysql-password=${ROOT_PASSWORD}`,
    '--mysql-db=sbtest',
    `--tables=${TABLES}`,
    `--table-size=${tableRows(sizeMib)}`,
  ];
}

async function prepareDatadir(sizeMib: number, log: (s: string) => void): Promise<void> {
  const c = await admin(PORT);
  try {
    const rows = tableRows(sizeMib);
    const [have] = (await c.query(
      "SELECT COUNT(*) AS n, COALESCE(SUM(table_rows), 0) AS r FROM information_schema.tables WHERE table_schema = 'sbtest'",
    )) as unknown as [[{ n: number; r: number }]];
    if (Number(have[0].n) === TABLES && Number(have[0].r) > rows * TABLES * 0.8) {
      log(`datadir: sbtest already prepared (${TABLES} tables, ~${have[0].r} rows)`);
      return;
    }
    log(`datadir: sysbench prepare, ${TABLES} tables × ${rows} rows (~${sizeMib} MiB); this takes minutes once`);
    await c.query('DROP DATABASE IF EXISTS sbtest');
    await c.query('CREATE DATABASE sbtest');
    execFileSync('sysbench', ['oltp_read_write', ...sysbenchArgs(sizeMib), '--threads=2', 'prepare'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  } finally {
    await c.end();
  }
}

function config(work: string, instDir: string, store: string): string {
  const path = join(work, `${store.split(':')[0]}.yaml`);
  const stores = store.startsWith('s3')
    ? `    - name: st
      kind: s3
      endpoint: http://127.0.0.1:${VGW_PORT}
      bucket: benchbk
      force_path_style: true
      access_key_id: tidemark
      secret_access_key: tidemark-secret`
    : `    - name: st
      kind: dir
      path: ${join(work, 'store')}`;
  writeFileSync(
    path,
    `source:
  name: src
  host: 127.0.0.1
  port: ${PORT}
  user: root
  password: ${ROOT_PASSWORD}
  include: ["sbtest.*"]
journal:
  dir: ${join(work, 'journal')}
targets:
  - name: unused
    port: 3471
    user: root
log:
  level: warn
backup:
  stores:
${stores}
  encryption:
    key_file: ${join(work, 'master.key')}
  stream:
    option_file: only
    socket: ${join(instDir, 'mysqld.sock')}
    datadir: ${join(instDir, 'data')}
    scratch_dir: ${join(work, 'scratch')}
  catalog_dir: ${join(work, `catalog-${store.split(':')[0]}`)}
  logs:
    - name: ${LOG_JOB}
      store: st
      start: oldest
  jobs:
    - name: bench
      store: st
      type: full
      logs: ${LOG_JOB}
`,
  );
  return path;
}

const round = (n: number, d = 2): number => Math.round(n * 10 ** d) / 10 ** d;

export async function benchBackup(o: BackupBenchOptions): Promise<object> {
  const runDir = process.env['TIDEMARK_RUN_DIR'] ?? resolve(REPO_ROOT, '.run');
  const instDir = resolve(runDir, 'mariadb', NAME);
  const work = resolve(runDir, 'bench-backup');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(work, 'scratch'), { recursive: true });
  writeFileSync(join(work, 'master.key'), randomBytes(32).toString('hex'), { mode: 0o600 });
  startInstance(NAME, PORT);
  await prepareDatadir(o.sizeMib, o.log);
  const dataBytes = treeBytes(join(instDir, 'data'));
  const gib = dataBytes / 1024 ** 3;
  const mib = dataBytes / 1024 ** 2;
  o.log(`datadir: ${round(mib, 0)} MiB`);
  const mb = [
    'mariadb-backup',
    '--no-defaults',
    '--backup',
    '--stream=mbstream',
    `--target-dir=${join(work, 'scratch', 'mb')}`,
    `--datadir=${join(instDir, 'data')}`,
    `--socket=${join(instDir, 'mysqld.sock')}`,
    '--user=root',
    `--password=${ROOT_PASSWORD}`,
  ]
    .map(shellQuote)
    .join(' ');
  const zfile = join(work, 'peer.mbstream.zst');
  const scratchClean = (): void => rmSync(join(work, 'scratch', 'mb'), { recursive: true, force: true });

  o.log('backup 1/4: mariadb-backup --stream > /dev/null');
  const native = await measure('bash', ['-c', `${mb} > /dev/null 2>/dev/null`]);
  scratchClean();
  o.log(`  ${round(native.s)} s`);
  o.log('backup 2/4: mariadb-backup --stream | zstd -1 -T2 > file');
  const zstd = await measure('bash', ['-c', `${mb} 2>/dev/null | zstd -1 -T2 -q > ${shellQuote(zfile)}`]);
  scratchClean();
  const zstdBytes = statSync(zfile).size;
  o.log(`  ${round(zstd.s)} s, ${round(zstdBytes / 1024 ** 2, 1)} MiB`);

  // The full backup below starts a fresh binlog file: the log archiver (bench/backup-logs.ts) starts there.
  const flush = await admin(PORT);
  await flush.query('FLUSH BINARY LOGS');
  await flush.end();
  o.log('backup 3/4: tidemark backup run → directory store');
  const dirCfg = config(work, instDir, 'dir');
  const tmDir = await measure(CLI, ['backup', 'run', 'bench', '-c', dirCfg]);
  const storedBytes = treeBytes(join(work, 'store'));
  const id = /(\S+-bench-full-[0-9a-f]{6})/.exec(tmDir.stdout)?.[1];
  if (id === undefined) throw new Error(`no backup id in: ${tmDir.stdout}`);
  o.log(`  ${round(tmDir.s)} s, ${round(storedBytes / 1024 ** 2, 1)} MiB stored, ${id}`);

  o.log('backup 4/4: tidemark backup run → versitygw (S3 on loopback)');
  const s3 = startVersitygw('bench-bk', VGW_PORT, { fresh: true });
  let tmS3: Measured;
  try {
    await createBucket(s3, 'benchbk');
    tmS3 = await measure(CLI, ['backup', 'run', 'bench', '-c', config(work, instDir, 's3:')]);
  } finally {
    stopVersitygw('bench-bk');
  }
  o.log(`  ${round(tmS3.s)} s`);

  o.log('restore 1/2: zstd -d < file | mbstream -x, then mariadb-backup --prepare');
  const peerDir = join(work, 'restore-peer');
  mkdirSync(peerDir);
  const peerX = await measure('bash', [
    '-c',
    `zstd -d -q < ${shellQuote(zfile)} | mbstream -x -C ${shellQuote(peerDir)}`,
  ]);
  const peerP = await measure('mariadb-backup', ['--prepare', `--target-dir=${peerDir}`]);
  const peerS = peerX.s + peerP.s;
  rmSync(peerDir, { recursive: true, force: true });
  o.log(`  ${round(peerS)} s (extract ${round(peerX.s)} + prepare ${round(peerP.s)})`);
  o.log('restore 2/2: tidemark restore --backup ID --into DIR (directory store)');
  const tmRestoreDir = join(work, 'restore-tm');
  const tmRestore = await measure(CLI, [
    'restore',
    '--backup',
    id,
    '--into',
    tmRestoreDir,
    '--store-dir',
    join(work, 'store'),
    '--key-file',
    join(work, 'master.key'),
  ]);
  o.log(`  ${round(tmRestore.s)} s`);

  // The restored datadir stays: the native replica of the PITR figure starts on it.
  const logs = await benchLogs({
    port: PORT,
    work,
    storeDir: join(work, 'store'),
    keyFile: join(work, 'master.key'),
    config: dirCfg,
    binlogDir: join(instDir, 'binlog'),
    backupId: id,
    nativeDatadir: tmRestoreDir,
    sysbench: sysbenchArgs(o.sizeMib),
    pitrTx: o.pitrTx,
    archiveRate: o.archiveRate,
    archiveS: o.archiveS,
    log: o.log,
  });
  rmSync(work, { recursive: true, force: true });

  const perGib = (n: number | undefined): number => round((n ?? 0) / gib);
  return {
    bench: 'backup',
    datadir_mib: round(mib, 0),
    backup_mib_per_s: {
      mariadb_backup_devnull: round(mib / native.s, 1),
      mariadb_backup_zstd: round(mib / zstd.s, 1),
      tidemark_dir: round(mib / tmDir.s, 1),
      tidemark_s3: round(mib / tmS3.s, 1),
    },
    backup_ratio_to_zstd_pipeline: { dir: round(zstd.s / tmDir.s), s3: round(zstd.s / tmS3.s), goal_min: 0.8 },
    stored_bytes: {
      tidemark: storedBytes,
      zstd_1: zstdBytes,
      over_zstd_pct: round((storedBytes / zstdBytes - 1) * 100, 1),
      goal_max_pct: 2,
    },
    restore_s_per_gib: { peer: round(peerS / gib), tidemark: round(tmRestore.s / gib) },
    restore_ratio_to_peer: { ratio: round(tmRestore.s / peerS), goal_max: 1.2 },
    peak_rss_mb: {
      backup_dir: tmDir.rssMb['tidemark'],
      backup_s3: tmS3.rssMb['tidemark'],
      restore: tmRestore.rssMb['tidemark'],
      goal_max: 256,
    },
    cpu_s_per_gib: {
      backup_tidemark: perGib(tmDir.cpu['tidemark']),
      backup_mariadb_backup: perGib(tmDir.cpu['mariadb-backup']),
      peer_zstd: perGib(zstd.cpu['zstd']),
      restore_tidemark: perGib(tmRestore.cpu['tidemark']),
      restore_mbstream: perGib(tmRestore.cpu['mbstream']),
      restore_prepare: perGib(tmRestore.cpu['mariadb-backup']),
    },
    ...logs,
  };
}

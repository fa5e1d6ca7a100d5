/**
 * Restore drills on real MariaDB 10.11 (issue #13, scope 10): a source under a seeded workload, a full backup taken
 * mid-workload, the binlogs sealed as log backups (test/fixtures/log-seal.ts). `tidemark drill JOB` passes (the
 * source's consistent snapshot and the restored scratch server have identical checksums) and is in the history;
 * one flipped byte in a replayed log segment → the drill fails loudly (exit 1, naming the piece), leaves no
 * plaintext behind, and the failure is in the history too.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../backup/manifest.ts';
import { MasterKey } from '../../backup/pipeline/keys.ts';
import { DirStore } from '../../backup/store/dir.ts';
import { main } from '../../cli/main.ts';
import { takeBackup } from '../fixtures/backup-take.ts';
import { sealBinlogs } from '../fixtures/log-seal.ts';
import { admin, destroyInstance, REPO_ROOT, ROOT_PASSWORD, startInstance, stopInstance } from '../fixtures/mariadb.ts';
import { createWorkloadSchema, PausableWorkload } from '../fixtures/pitr-workload.ts';

const SRC = 'drill-src';
const SRC_PORT = 3817;
const SCRATCH_PORT = 3818;
const SCRATCH = `pitr-${SCRATCH_PORT}`;
const run = resolve(process.env['TIDEMARK_RUN_DIR'] ?? resolve(REPO_ROOT, '.run'));
const dir = join(run, 'drill-it');
const storeRoot = join(dir, 'store');
const catalogDir = join(dir, 'journal', 'backup-catalog');
const keyBytes = randomBytes(32);
const master = new MasterKey(keyBytes, 'test key');
const cfg = join(dir, 'tidemark.yaml');
let conn: mysql.Connection;
let full: Manifest;
let logs: Manifest[];

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = { code: -1, stdout: '', stderr: '' };
  out.code = await main([...argv, '-c', cfg], {
    stdout: { write: (s: string) => (out.stdout += s) },
    stderr: { write: (s: string) => (out.stderr += s) },
    env: {},
    signal: new AbortController().signal,
  });
  return out;
}

beforeAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  destroyInstance(SCRATCH);
  writeFileSync(join(dir, 'master.key'), keyBytes.toString('hex'), { mode: 0o600 });
  writeFileSync(
    cfg,
    `source:
  name: src
  host: 127.0.0.1
  port: ${SRC_PORT}
  user: root
  password: ${ROOT_PASSWORD}
  include: ["dr.*"]
journal:
  dir: ${join(dir, 'journal')}
targets:
  - name: unused
    port: 3819
    user: root
log:
  level: warn
backup:
  stores:
    - name: local
      kind: dir
      path: ${storeRoot}
  encryption:
    key_file: ${join(dir, 'master.key')}
  jobs:
    - name: db
      store: local
      type: full
      retention: { chains: 2 }
`,
  );
  startInstance(SRC, SRC_PORT, { fresh: true });
  conn = await admin(SRC_PORT);
  await createWorkloadSchema(conn, 'dr', 1000);
  const store = await DirStore.open(storeRoot);
  const w = new PausableWorkload({ schema: 'dr', port: SRC_PORT, seed: 4242, rows: 1000, probe: conn });
  w.start();
  try {
    await new Promise((r) => setTimeout(r, 300));
    full = await takeBackup({ store, master, instDir: join(run, 'mariadb', SRC), job: 'db', type: 'full' });
    await new Promise((r) => setTimeout(r, 700));
  } finally {
    await w.stop();
  }
  logs = await sealBinlogs({ store, master, instDir: join(run, 'mariadb', SRC), job: 'db-logs', groupsPerSegment: 50 });
}, 240_000);

afterAll(async () => {
  await conn?.end();
  stopInstance(SCRATCH);
  destroyInstance(SCRATCH);
  stopInstance(SRC);
  destroyInstance(SRC);
  rmSync(dir, { recursive: true, force: true });
});

describe('tidemark drill', () => {
  it('passes on a good chain: identical checksums at the source snapshot, recorded in the history', async () => {
    const [[g]] = (await conn.query('SELECT @@gtid_binlog_pos AS g')) as unknown as [[{ g: string }]];
    expect(g.g).not.toBe(full.gtid); // the drill must replay logs after the full
    const r = await cli(['drill', 'db', '--log-job', 'db-logs', '--scratch-port', String(SCRATCH_PORT)]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/source snapshot at mysql-bin\.\d+:\d+: 2 tables in 1 schema/);
    expect(r.stdout).toContain(`drill passed: 2 tables identical at GTID ${g.g} (backup ${full.id})`);
    expect(existsSync(join(catalogDir, 'drill-db'))).toBe(false);
  }, 240_000);

  it('fails loudly on a corrupt log segment piece, writes no plaintext, and the failure is in the history', async () => {
    const seg = logs.at(-1) as Manifest;
    const file = join(storeRoot, (seg.pieces[0] as Manifest['pieces'][number]).key);
    const original = readFileSync(file);
    const bytes = Buffer.from(original);
    bytes.writeUInt8(bytes.readUInt8(bytes.length >> 1) ^ 0x10, bytes.length >> 1);
    writeFileSync(file, bytes);
    try {
      const r = await cli(['drill', 'db', '--log-job', 'db-logs', '--scratch-port', String(SCRATCH_PORT)]);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain('DRILL FAILED (BACKUP_INTEGRITY)');
      expect(r.stderr).toContain("drill of 'db' FAILED");
      expect(r.stderr).toContain(`piece '${seg.pieces[0]?.key}'`);
      expect(existsSync(join(catalogDir, 'drill-db'))).toBe(false);
      expect(readdirSync(catalogDir).filter((f) => f.includes('.binlog-') || f.includes('.restore-'))).toEqual([]);
    } finally {
      writeFileSync(file, original);
    }
    const h = await cli(['drill', 'db', '--history', '--json']);
    const rows = h.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { ok: boolean; code: string | null; tables: number });
    expect(rows.map((x) => [x.ok, x.code])).toEqual([
      [false, 'BACKUP_INTEGRITY'],
      [true, null],
    ]);
  }, 240_000);
});

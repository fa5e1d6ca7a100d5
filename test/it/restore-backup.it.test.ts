/**
 * Restore from a backup chain on real MariaDB 10.11 (issue #13, scope 9 without binlog replay, and the tamper
 * acceptance): a full taken under a running writer, more changes, the writer stopped (so the state at the
 * incremental's GTID is known), per-table checksums and GTID recorded, an incremental; `restoreBackup` of the
 * incremental into a scratch instance's datadir, the scratch server started on it → the same checksums. Then: one
 * flipped byte in a piece → refused naming the piece and chunk, nothing left in the target; a wrong master key →
 * refused before any output; the last piece deleted → refused naming it.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../backup/manifest.ts';
import { MasterKey } from '../../backup/pipeline/keys.ts';
import { restoreBackup } from '../../backup/restore/restore.ts';
import { DirStore } from '../../backup/store/dir.ts';
import { main } from '../../cli/main.ts';
import { TidemarkError } from '../../core/errors.ts';
import { takeBackup } from '../fixtures/backup-take.ts';
import { schemaChecksums } from '../fixtures/checksums.ts';
import { admin, destroyInstance, REPO_ROOT, startInstance, stopInstance } from '../fixtures/mariadb.ts';

const SRC = 'bk-restore-src';
const SRC_PORT = 3795;
const SCRATCH = 'bk-restore-scratch';
const SCRATCH_PORT = 3800;
const run = resolve(process.env['TIDEMARK_RUN_DIR'] ?? resolve(REPO_ROOT, '.run'));
const srcDir = join(run, 'mariadb', SRC);
const scratchData = join(run, 'mariadb', SCRATCH, 'data');
const storeRoot = join(run, 'bk-restore-store');
const tryDir = join(run, 'bk-restore-try');
const keyBytes = randomBytes(32);
const master = new MasterKey(keyBytes, 'test key');
const keyFile = join(run, 'bk-restore.key');
let store: DirStore;
let conn: mysql.Connection;
let full: Manifest;
let incr: Manifest;
let recorded: Record<string, string>;
let recordedGtid: string;

beforeAll(async () => {
  rmSync(storeRoot, { recursive: true, force: true });
  rmSync(tryDir, { recursive: true, force: true });
  destroyInstance(SCRATCH);
  startInstance(SRC, SRC_PORT, { fresh: true });
  conn = await admin(SRC_PORT);
  await conn.query(
    'CREATE DATABASE bk; ' +
      'CREATE TABLE bk.t1 (id INT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB; ' +
      'CREATE TABLE bk.t2 (id INT PRIMARY KEY, n BIGINT, b BLOB) ENGINE=InnoDB; ' +
      'CREATE TABLE bk.w (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(40)) ENGINE=InnoDB',
  );
  const rows = Array.from({ length: 3000 }, (_, i) => [i + 1, `row ${i + 1} ${'x'.repeat(120)}`]);
  await conn.query('INSERT INTO bk.t1 (id, v) VALUES ?', [rows]);
  const blobs = Array.from({ length: 400 }, (_, i) => [i + 1, i * 7, randomBytes(2000)]);
  await conn.query('INSERT INTO bk.t2 (id, n, b) VALUES ?', [blobs]);
  store = await DirStore.open(storeRoot);
}, 120_000);

afterAll(async () => {
  await conn?.end();
  stopInstance(SCRATCH);
  stopInstance(SRC);
  destroyInstance(SCRATCH);
  destroyInstance(SRC);
  rmSync(storeRoot, { recursive: true, force: true });
  rmSync(tryDir, { recursive: true, force: true });
  rmSync(keyFile, { force: true });
});

/** Autocommit writes on its own connection until stopped; returns how many it made. */
function startWriter(): { stop: () => Promise<number> } {
  let running = true;
  const done = (async () => {
    const c = await admin(SRC_PORT);
    let n = 0;
    try {
      while (running) {
        n++;
        await c.query('INSERT INTO bk.w (note) VALUES (?)', [`w${n}`]);
        await c.query('UPDATE bk.t1 SET v = CONCAT(LEFT(v, 150), ?) WHERE id = ?', [`-${n}`, 1 + (n % 3000)]);
      }
    } finally {
      await c.end();
    }
    return n;
  })();
  return {
    stop: async () => {
      running = false;
      return done;
    },
  };
}

function pieceFile(key: string): string {
  return join(storeRoot, key);
}

async function refused(p: Promise<unknown>): Promise<TidemarkError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TidemarkError);
  return err as TidemarkError;
}

describe('restore --backup from a full → incremental chain', () => {
  it('restores the incremental into a datadir a scratch server starts on, with the checksums at its GTID', async () => {
    const writer = startWriter();
    let writes: number;
    try {
      full = await takeBackup({ store, master, instDir: srcDir, job: 'it', type: 'full' });
      await conn.query("UPDATE bk.t2 SET n = n + 1, b = REPEAT('z', 100) WHERE id % 5 = 0");
      await conn.query('DELETE FROM bk.t1 WHERE id % 11 = 0');
      await conn.query('CREATE TABLE bk.t3 (k VARCHAR(20) PRIMARY KEY, d DATETIME(6)) ENGINE=InnoDB');
      await conn.query("INSERT INTO bk.t3 VALUES ('a', '2026-12-06 10:00:00.123456'), ('b', NULL)");
    } finally {
      writes = await writer.stop();
    }
    expect(full.pieces.length).toBeGreaterThanOrEqual(2);
    expect(writes).toBeGreaterThan(0);
    recorded = await schemaChecksums(conn, 'bk');
    const [[g]] = (await conn.query('SELECT @@gtid_binlog_pos AS g')) as unknown as [[{ g: string }]];
    recordedGtid = g.g;
    incr = await takeBackup({ store, master, instDir: srcDir, job: 'it', type: 'incremental', parent: full });
    expect(incr.gtid).toBe(recordedGtid);
    expect(incr.lsn?.from).toBe(full.lsn?.to);

    const lines: string[] = [];
    const r = await restoreBackup({ store, master, id: incr.id, into: scratchData, onLine: (l) => lines.push(l) });
    expect(r.chain).toEqual([full.id, incr.id]);
    expect(r.gtid).toBe(recordedGtid);
    expect(lines.some((l) => l.startsWith(`applying incremental ${incr.id}`))).toBe(true);
    expect(readdirSync(run).filter((f) => f.includes('.restore-'))).toEqual([]);

    startInstance(SCRATCH, SCRATCH_PORT);
    const c2 = await admin(SCRATCH_PORT);
    try {
      const restored = await schemaChecksums(c2, 'bk');
      expect(Object.keys(restored).sort()).toEqual(['t1', 't2', 't3', 'w']);
      expect(restored).toEqual(recorded);
      const [[w]] = (await c2.query('SELECT COUNT(*) AS n FROM bk.w')) as unknown as [[{ n: string }]];
      expect(Number(w.n)).toBe(writes);
    } finally {
      await c2.end();
      stopInstance(SCRATCH);
    }
  }, 180_000);

  it('tidemark restore --backup of a differential (full + it only) via the command line', async () => {
    await conn.query("UPDATE bk.t3 SET d = NOW(6) WHERE k = 'b'; DELETE FROM bk.w WHERE id % 2 = 0");
    await conn.query("INSERT INTO bk.t1 (id, v) VALUES (100001, 'after the incremental')");
    const want = await schemaChecksums(conn, 'bk');
    expect(want).not.toEqual(recorded);
    const diff = await takeBackup({ store, master, instDir: srcDir, job: 'it', type: 'differential', parent: full });
    writeFileSync(keyFile, `${keyBytes.toString('hex')}\n`, { mode: 0o600 });
    destroyInstance(SCRATCH);
    let stdout = '';
    let stderr = '';
    const code = await main(
      ['restore', '--backup', diff.id, '--into', scratchData, '--store-dir', storeRoot, '--key-file', keyFile],
      {
        stdout: { write: (t: string) => (stdout += t) },
        stderr: { write: (t: string) => (stderr += t) },
        env: {},
        signal: new AbortController().signal,
      },
    );
    expect(code, stderr).toBe(0);
    expect(stdout).toContain('chain of 2 (full → differential)');
    expect(stdout).toContain(`applying differential ${diff.id}`);
    expect(stdout).toContain(`GTID ${diff.gtid}`);
    startInstance(SCRATCH, SCRATCH_PORT);
    const c2 = await admin(SCRATCH_PORT);
    try {
      expect(await schemaChecksums(c2, 'bk')).toEqual(want);
    } finally {
      await c2.end();
      stopInstance(SCRATCH);
      destroyInstance(SCRATCH);
    }
  }, 120_000);

  it('one flipped byte in a piece: refused naming the piece and chunk, no plaintext left in the target', async () => {
    const piece = full.pieces[1] as Manifest['pieces'][number];
    const file = pieceFile(piece.key);
    const original = readFileSync(file);
    const bytes = Buffer.from(original);
    const at = Math.floor(bytes.length / 2);
    bytes.writeUInt8(bytes.readUInt8(at) ^ 0x01, at);
    writeFileSync(file, bytes);
    mkdirSync(tryDir, { recursive: true }); // an existing empty target stays, emptied
    const lines: string[] = [];
    try {
      const err = await refused(
        restoreBackup({ store, master, id: incr.id, into: tryDir, onLine: (l) => lines.push(l) }),
      );
      expect(err.code).toBe('BACKUP_INTEGRITY');
      expect(err.message).toContain(`piece '${piece.key}' chunk `);
      expect(err.context['pieceKey']).toBe(piece.key);
      expect(err.context['piece'], err.message).toBe(2);
      expect(typeof err.context['chunk']).toBe('number');
      console.log(`tamper refused: ${err.message}`);
      expect(lines.some((l) => l.startsWith(`extracting full ${full.id}`))).toBe(true);
      expect(readdirSync(tryDir)).toEqual([]);
      expect(readdirSync(run).filter((f) => f.includes('.restore-'))).toEqual([]);
    } finally {
      writeFileSync(file, original);
      rmSync(tryDir, { recursive: true, force: true });
    }
  }, 60_000);

  it('a wrong master key: refused before any output', async () => {
    const lines: string[] = [];
    const wrong = new MasterKey(randomBytes(32), 'other key');
    const err = await refused(
      restoreBackup({ store, master: wrong, id: incr.id, into: tryDir, onLine: (l) => lines.push(l) }),
    );
    expect(err.code).toBe('BACKUP_KEY');
    expect(err.message).toContain(full.id);
    expect(lines).toEqual([]);
    expect(existsSync(tryDir)).toBe(false);
  });

  it('the last piece deleted: refused naming it, before any output', async () => {
    const last = incr.pieces.at(-1) as Manifest['pieces'][number];
    const file = pieceFile(last.key);
    renameSync(file, `${file}.aside`);
    const lines: string[] = [];
    try {
      const err = await refused(
        restoreBackup({ store, master, id: incr.id, into: tryDir, onLine: (l) => lines.push(l) }),
      );
      expect(err.code).toBe('BACKUP_INTEGRITY');
      expect(err.message).toContain(`piece '${last.key}'`);
      expect(err.message).toContain('missing');
      expect(lines).toEqual([]);
      expect(existsSync(tryDir)).toBe(false);
    } finally {
      renameSync(`${file}.aside`, file);
    }
  });
});

/**
 * backup/mbstream.ts against the real mariadb-backup of the server's version: a full and an LSN incremental of a
 * small table are read from mariadb-backup's stdout through the parser (every chunk CRC-checked in flight), the
 * checkpoints and binlog info are captured, the incremental starts at the full's to_lsn, the files the parser
 * reassembles equal what `mbstream -x` extracts from the same bytes, and one flipped payload byte is refused
 * naming the file. Instance port 3770.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CapturedInfo, MetaCapture } from '../../backup/backup-info.ts';
import { type MbstreamChunk, MbstreamParser } from '../../backup/mbstream.ts';
import { TidemarkError } from '../../core/errors.ts';
import { admin, REPO_ROOT, ROOT_PASSWORD, startInstance, stopInstance } from '../fixtures/mariadb.ts';

const NAME = 'bk-mbstream';
const PORT = 3770;
const instDir = resolve(process.env['TIDEMARK_RUN_DIR'] ?? resolve(REPO_ROOT, '.run'), 'mariadb', NAME);
let conn: mysql.Connection;
let scratch: string;

beforeAll(async () => {
  startInstance(NAME, PORT, { fresh: true });
  conn = await admin(PORT);
  await conn.query('CREATE DATABASE bk; CREATE TABLE bk.t (id INT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB');
  await insertRows(1, 2000);
  // A clean restart checkpoints, so the table is an old tablespace to mariadb-backup (streamed as t.ibd, then
  // t.ibd.delta in an incremental) rather than one created since the checkpoint (streamed whole as t.new).
  await conn.end();
  stopInstance(NAME);
  startInstance(NAME, PORT);
  conn = await admin(PORT);
  scratch = mkdtempSync(join(tmpdir(), 'tidemark-mbstream-it-'));
});

afterAll(async () => {
  await conn?.end();
  stopInstance(NAME);
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
});

async function insertRows(from: number, to: number): Promise<void> {
  const rows = Array.from({ length: to - from + 1 }, (_, i) => [from + i, `row ${from + i} ${'x'.repeat(100)}`]);
  await conn.query('INSERT INTO bk.t (id, v) VALUES ?', [rows]);
}

/** Writes parsed chunks into a directory the way `mbstream -x` does (test-side applier). */
class DirApplier {
  readonly #fds = new Map<string, number>();
  readonly root: string;
  constructor(root: string) {
    this.root = root;
  }

  apply(c: MbstreamChunk): void {
    const file = join(this.root, c.path);
    if (c.type === 'payload' || c.type === 'seek' || c.type === 'eof') {
      let fd = this.#fds.get(c.path);
      if (fd === undefined) {
        mkdirSync(dirname(file), { recursive: true });
        // 'w', never an append mode: pwrite on an O_APPEND descriptor ignores the offset on Linux. The parser
        // lets a closed file open again only with the REWRITE flag, which truncates it (as mbstream -x does).
        fd = openSync(file, 'w');
        this.#fds.set(c.path, fd);
      }
      if (c.type === 'payload') writeSync(fd, c.payload, 0, c.payload.length, Number(c.offset));
      if (c.type === 'eof') {
        closeSync(fd);
        this.#fds.delete(c.path);
      }
    } else if (c.type === 'rename') {
      mkdirSync(dirname(join(this.root, c.newPath)), { recursive: true });
      renameSync(file, join(this.root, c.newPath));
    } else if (c.type === 'remove') {
      rmSync(file, { force: true });
    }
  }
}

interface Taken {
  readonly raw: string;
  readonly info: CapturedInfo;
  readonly chunks: number;
  readonly payloadChunks: Array<{ path: string; streamOffset: bigint; headerBytes: number; length: number }>;
  readonly dir: string;
}

/** Runs mariadb-backup --stream=mbstream, parsing its stdout as it arrives. */
async function takeBackup(label: string, extra: string[]): Promise<Taken> {
  const target = join(scratch, `${label}-target`);
  const dir = join(scratch, `${label}-parsed`);
  const raw = join(scratch, `${label}.xb`);
  mkdirSync(target, { recursive: true });
  mkdirSync(dir, { recursive: true });
  const args = [
    '--no-defaults',
    '--backup',
    '--stream=mbstream',
    `--target-dir=${target}`,
    `--datadir=${join(instDir, 'data')}`,
    `--socket=${join(instDir, 'mysqld.sock')}`,
    '--user=root',
    `--password=${ROOT_PASSWORD}`,
    ...extra,
  ];
  const child = spawn('mariadb-backup', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  const parser = new MbstreamParser();
  const meta = new MetaCapture();
  const applier = new DirApplier(dir);
  const rawFd = openSync(raw, 'w');
  const payloadChunks: Taken['payloadChunks'] = [];
  for await (const buf of child.stdout) {
    writeSync(rawFd, buf as Buffer);
    for (const c of parser.push(buf as Buffer)) {
      meta.observe(c);
      applier.apply(c);
      if (c.type === 'payload') {
        payloadChunks.push({
          path: c.path,
          streamOffset: c.streamOffset,
          headerBytes: 14 + Buffer.byteLength(c.path) + 20,
          length: c.payload.length,
        });
      }
    }
  }
  closeSync(rawFd);
  const code = await new Promise<number | null>((res) =>
    child.exitCode !== null ? res(child.exitCode) : child.on('close', res),
  );
  expect(code, stderr.slice(-2000)).toBe(0);
  parser.end();
  return { raw, info: meta.result(), chunks: parser.stats.chunks, payloadChunks, dir };
}

function filesUnder(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else
        out.set(relative(root, p), `${statSync(p).size}:${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
    }
  };
  walk(root);
  return out;
}

function extractWithMbstream(raw: string, label: string): Map<string, string> {
  const out = join(scratch, `${label}-mbstream`);
  mkdirSync(out, { recursive: true });
  const r = spawnSync('mbstream', ['-x', '-C', out], { input: readFileSync(raw), maxBuffer: 1 << 20 });
  expect(r.status, r.stderr?.toString()).toBe(0);
  return filesUnder(out);
}

describe('mariadb-backup --stream=mbstream through the parser', () => {
  let full: Taken;

  it('full: every chunk CRC-checked, checkpoints and binlog info captured, files equal mbstream -x', async () => {
    full = await takeBackup('full', []);
    expect(full.chunks).toBeGreaterThan(10);
    const cp = full.info.checkpoints;
    expect(cp?.backupType).toBe('full-backuped');
    expect(cp?.fromLsn).toBe(0n);
    expect(cp?.toLsn).toBeGreaterThan(0n);
    const [[status]] = (await conn.query('SHOW MASTER STATUS')) as unknown as [[{ File: string }]];
    expect(full.info.binlog?.file).toBe(status.File);
    expect(full.info.binlog?.position).toBeGreaterThan(4n);
    const [[g]] = (await conn.query('SELECT @@gtid_binlog_pos AS g')) as unknown as [[{ g: string }]];
    expect(full.info.binlog?.gtid).toBe(g.g);
    const parsed = filesUnder(full.dir);
    expect(parsed.has(join('bk', 't.ibd'))).toBe(true);
    expect(parsed).toEqual(extractWithMbstream(full.raw, 'full'));
  });

  it('incremental from the full to_lsn: from_lsn equals it, files equal mbstream -x', async () => {
    await insertRows(2001, 3000);
    await conn.query("UPDATE bk.t SET v = CONCAT(v, '!') WHERE id % 10 = 0");
    const parentTo = full.info.checkpoints?.toLsn as bigint;
    const incr = await takeBackup('incr', [`--incremental-lsn=${parentTo}`]);
    expect(incr.info.checkpoints?.backupType).toBe('incremental');
    expect(incr.info.checkpoints?.fromLsn).toBe(parentTo);
    // to_lsn is the checkpoint: it moves only if one happened in between; the redo copied always goes further.
    expect(incr.info.checkpoints?.toLsn).toBeGreaterThanOrEqual(parentTo);
    expect(incr.info.checkpoints?.lastLsn).toBeGreaterThan(full.info.checkpoints?.lastLsn as bigint);
    const parsed = filesUnder(incr.dir);
    expect(parsed.has(join('bk', 't.ibd.delta')) && parsed.has(join('bk', 't.ibd.meta'))).toBe(true);
    expect(parsed.has(join('bk', 't.ibd'))).toBe(false);
    expect(parsed).toEqual(extractWithMbstream(incr.raw, 'incr'));
  });

  it('one flipped payload byte is refused naming the file', () => {
    const target = full.payloadChunks.find((c) => c.path === 'bk/t.ibd' && c.length > 100);
    expect(target).toBeDefined();
    const t = target as NonNullable<typeof target>;
    const bytes = readFileSync(full.raw);
    const at = Number(t.streamOffset) + t.headerBytes + Math.floor(t.length / 2);
    bytes.writeUInt8(bytes.readUInt8(at) ^ 0x20, at);
    const p = new MbstreamParser();
    let err: unknown;
    try {
      for (let off = 0; off < bytes.length; off += 1 << 20) p.push(bytes.subarray(off, off + (1 << 20)));
      p.end();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).code).toBe('MBSTREAM_CORRUPT');
    expect((err as Error).message).toContain(`'${t.path}'`);
    expect((err as Error).message).toContain(`stream offset ${t.streamOffset}`);
  });
});

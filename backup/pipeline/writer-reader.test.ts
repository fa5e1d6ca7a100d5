import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import { prng } from '../../test/fixtures/prng.ts';
import { DirStore } from '../store/dir.ts';
import type { BackupStore } from '../store.ts';
import { CHUNK_OVERHEAD, HEADER_BYTES } from './format.ts';
import { MasterKey, newDataKey } from './keys.ts';
import type { Progress } from './progress.ts';
import { readBackup, readSealedBackup } from './reader.ts';
import { mixedData } from '../../test/fixtures/backup-seal.ts';
import { type PieceInfo, writeBackup, writeSealedBackup } from './writer.ts';

const MiB = 1 << 20;
const BLOCK = MiB;
const PIECE = 2 * (BLOCK + CHUNK_OVERHEAD) + 1000; // two incompressible chunks a piece
let root: string;
let store: DirStore;
const master = new MasterKey(randomBytes(32), 'test');

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tm-pipe-'));
  store = await DirStore.open(root);
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** `data` in slices of random sizes, like a pipe delivers it. */
function source(data: Buffer, seed = 1): Readable {
  const r = prng(seed);
  let at = 0;
  return new Readable({
    read() {
      if (at >= data.length) return void this.push(null);
      const n = 1 + Math.floor(r() * 300_000);
      this.push(data.subarray(at, at + n));
      at += n;
    },
  });
}

/** Reads the stream; returns what it released before it ended or failed. */
async function drain(r: Readable): Promise<{ data: Buffer; err?: unknown }> {
  const got: Buffer[] = [];
  try {
    for await (const b of r as AsyncIterable<Buffer>) got.push(b);
    return { data: Buffer.concat(got) };
  } catch (err) {
    return { data: Buffer.concat(got), err };
  }
}

function expectIntegrity(err: unknown, pieceKey: string, chunk?: number): TidemarkError {
  expect(err).toBeInstanceOf(TidemarkError);
  const e = err as TidemarkError;
  expect(e.code, e.message).toBe('BACKUP_INTEGRITY');
  expect(e.context['pieceKey']).toBe(pieceKey);
  if (chunk !== undefined) expect(e.context['chunk']).toBe(chunk);
  return e;
}

/** Chunk start offsets in a stored piece, from its headers. */
function chunkStarts(piece: Buffer): number[] {
  const out: number[] = [];
  for (let at = 0; at < piece.length; at += CHUNK_OVERHEAD + piece.readUInt32BE(at + 12)) out.push(at);
  return out;
}

async function backup(id: string, data: Buffer, seed = 1) {
  const dataKey = newDataKey();
  const pieces = await writeBackup({
    store,
    source: source(data, seed),
    backupId: id,
    dataKey,
    blockSize: BLOCK,
    pieceSize: PIECE,
  });
  return { id, dataKey, pieces };
}

describe('writer → dir store → reader', () => {
  it('round-trips empty, 1 byte, a block, a block + 1 and several pieces; pieces match the store', async () => {
    for (const [i, size] of [0, 1, BLOCK, BLOCK + 1, 7 * MiB + 12345].entries()) {
      const data = i === 4 ? randomBytes(size) : mixedData(size, i);
      const b = await backup(`rt-${i}`, data, i);
      expect(b.pieces.reduce((n, p) => n + p.chunks, 0)).toBe(Math.max(1, Math.ceil(size / BLOCK)));
      expect(b.pieces.map((p) => p.key)).toEqual(
        b.pieces.map((_, k) => `rt-${i}/piece-${String(k + 1).padStart(6, '0')}`),
      );
      for (const p of b.pieces) {
        const bytes = await readFile(join(root, p.key));
        expect(BigInt(bytes.length)).toBe(p.size);
        expect(bytes.length).toBeLessThanOrEqual(PIECE);
        expect(createHash('sha256').update(bytes).digest('hex')).toBe(p.sha256);
      }
      if (i === 4) expect(b.pieces.length).toBe(4);
      const back = await drain(readBackup({ store, backupId: b.id, dataKey: b.dataKey, pieces: b.pieces }));
      expect(back.err).toBeUndefined();
      expect(back.data.equals(data), `size ${size}`).toBe(true);
    }
  });

  it('a flipped byte in a stored piece: refused naming piece and chunk, only earlier chunks released', async () => {
    const data = randomBytes(7 * MiB + 5);
    const b = await backup('flip', data);
    const r = prng(5);
    for (let t = 0; t < 6; t++) {
      const pi = Math.floor(r() * b.pieces.length);
      const p = b.pieces[pi] as PieceInfo;
      const file = join(root, p.key);
      const orig = await readFile(file);
      const at = t === 0 ? HEADER_BYTES + 3 : Math.floor(r() * orig.length);
      const chunk = chunkStarts(orig).findLastIndex((s) => s <= at);
      const bad = Buffer.from(orig);
      bad[at] = (bad[at] as number) ^ 0x40;
      await writeFile(file, bad);
      const got = await drain(readBackup({ store, backupId: b.id, dataKey: b.dataKey, pieces: b.pieces }));
      await writeFile(file, orig);
      expectIntegrity(got.err, p.key, chunk);
      const before = b.pieces.slice(0, pi).reduce((n, q) => n + q.chunks, 0) + chunk;
      expect(got.data.equals(data.subarray(0, before * BLOCK)), `piece ${pi} byte ${at}`).toBe(true);
    }
  });

  it('a missing piece, a dropped last chunk (size and hash fixed up) or a dropped last piece is refused', async () => {
    const data = randomBytes(5 * MiB);
    const b = await backup('drop', data);
    const read = (pieces: readonly PieceInfo[]) =>
      drain(readBackup({ store, backupId: b.id, dataKey: b.dataKey, pieces }));
    const last = b.pieces.at(-1) as PieceInfo;
    const file = join(root, last.key);
    const orig = await readFile(file);

    await rm(file);
    let got = await read(b.pieces);
    expect(expectIntegrity(got.err, last.key, 0).message).toContain('missing');

    const cut = orig.subarray(0, chunkStarts(orig).at(-1));
    await writeFile(file, cut);
    const fixed = b.pieces.map((p) =>
      p === last
        ? {
            ...p,
            size: BigInt(cut.length),
            sha256: createHash('sha256').update(cut).digest('hex'),
            chunks: p.chunks - 1,
          }
        : p,
    );
    got = await read(fixed);
    expect(expectIntegrity(got.err, last.key).message).toContain('without its last chunk');
    expect(got.data.equals(data.subarray(0, got.data.length))).toBe(true);

    await writeFile(file, orig);
    got = await read(b.pieces.slice(0, -1));
    expect(expectIntegrity(got.err, b.pieces.at(-2)?.key ?? '').message).toContain('without its last chunk');
    expect((await read(b.pieces)).data.equals(data)).toBe(true);
    await truncate(file, orig.length - 1);
    expect(expectIntegrity((await read(b.pieces)).err, last.key).message).toContain('truncated');
  });

  it('a wrong master key is refused before any piece is fetched', async () => {
    let gets = 0;
    const counting: BackupStore = Object.assign(Object.create(store) as BackupStore, {
      get: (k: string) => {
        gets++;
        return store.get(k);
      },
    });
    const data = mixedData(3 * MiB, 3);
    const w = await writeSealedBackup({
      store,
      source: source(data),
      backupId: 'keyed',
      master,
      blockSize: BLOCK,
      pieceSize: PIECE,
    });
    const wrong = new MasterKey(randomBytes(32), 'wrong');
    const o = { store: counting, backupId: 'keyed', pieces: w.pieces, encryption: w.encryption };
    expect(() => readSealedBackup({ ...o, master: wrong })).toThrow(expect.objectContaining({ code: 'BACKUP_KEY' }));
    expect(gets).toBe(0);
    expect((await drain(readSealedBackup({ ...o, master }))).data.equals(data)).toBe(true);
    expect(gets).toBe(w.pieces.length);
  });

  it('backpressure: a slow store holds the source back to a few blocks ahead', async () => {
    let produced = 0;
    let taken = 0;
    let ahead = 0;
    const total = 12 * MiB;
    const src = new Readable({
      highWaterMark: 64 << 10,
      read() {
        if (produced >= total) return void this.push(null);
        produced += 64 << 10;
        ahead = Math.max(ahead, produced - taken);
        this.push(randomBytes(64 << 10));
      },
    });
    const slow: BackupStore = Object.assign(Object.create(store) as BackupStore, {
      put: (k: string, body: Readable, opts?: { signal?: AbortSignal }) =>
        store.put(
          k,
          body.pipe(
            new Transform({
              highWaterMark: 64 << 10,
              transform(c: Buffer, _e, cb) {
                taken += c.length;
                setTimeout(() => cb(null, c), 2);
              },
            }),
          ),
          opts,
        ),
    });
    // One piece for all of it: only the piece body's backpressure can hold the source back.
    const pieces = await writeBackup({
      store: slow,
      source: src,
      backupId: 'slow',
      dataKey: newDataKey(),
      blockSize: BLOCK,
      pieceSize: 64 * MiB,
    });
    expect(pieces.length).toBe(1);
    expect(produced).toBe(total);
    // A block filling, up to three compressing (writer.ts COMPRESS_DEPTH), one held back, one being written, the
    // piece body's buffer, the pipe buffers: bounded by the pipeline's depth, not by the source's size.
    expect(ahead).toBeLessThan(7 * BLOCK);
    expect(ahead).toBeGreaterThan(BLOCK);
  });

  it('a store failing in the middle of a piece fails the backup with its error (no hang)', async () => {
    const failing: BackupStore = Object.assign(Object.create(store) as BackupStore, {
      put: async (_k: string, body: Readable) => {
        let n = 0;
        for await (const c of body as AsyncIterable<Buffer>) {
          n += c.length;
          if (n > 2 * MiB) throw new TidemarkError('store went away (test)', { code: 'BACKUP_STORE', retriable: true });
        }
        throw new Error('the body ended: the writer should have failed first');
      },
    });
    const err = await writeBackup({
      store: failing,
      source: source(randomBytes(12 * MiB)),
      backupId: 'storefail',
      dataKey: newDataKey(),
      blockSize: BLOCK,
      pieceSize: 64 * MiB,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'BACKUP_STORE', message: 'store went away (test)' });
  });

  it('reports progress up to the total, and an abort stores nothing under the piece being written', async () => {
    const seen: Progress[] = [];
    const data = randomBytes(3 * MiB);
    await writeBackup({
      store,
      source: source(data),
      backupId: 'prog',
      dataKey: newDataKey(),
      blockSize: BLOCK,
      pieceSize: PIECE,
      expectedBytes: data.length,
      onProgress: (p) => seen.push(p),
    });
    const last = seen.at(-1) as Progress;
    expect(last).toMatchObject({ bytes: data.length, total: data.length, done: true, etaSeconds: 0 });
    expect(seen.map((p) => p.bytes)).toEqual([...seen.map((p) => p.bytes)].sort((a, b) => a - b));

    const ac = new AbortController();
    const endless = new Readable({
      read() {
        setTimeout(() => this.push(randomBytes(256 << 10)), 1);
      },
    });
    setTimeout(() => ac.abort(), 300);
    const err = await writeBackup({
      store,
      source: endless,
      backupId: 'aborted',
      dataKey: newDataKey(),
      blockSize: BLOCK,
      pieceSize: 64 * MiB,
      signal: ac.signal,
    }).catch((e: unknown) => e);
    expect((err as TidemarkError).code).toBe('ABORTED');
    const left = [];
    for await (const o of store.list('aborted/')) left.push(o);
    expect(left).toEqual([]);
  });
});

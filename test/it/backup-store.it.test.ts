/**
 * The S3 backup store against a real versitygw (compose/local/versitygw.sh, posix backend): the store contract
 * (backup/store/contract.ts), a 64 MiB stream through writer → S3 → reader with 5 MiB parts (multipart really
 * used, checked by the parts count the server reports), a tampered S3 object refused by the reader, and the
 * server SIGKILLed mid-piece (a retriable failure, nothing left under the key).
 */
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import { MasterKey } from '../../backup/pipeline/keys.ts';
import { readSealedBackup } from '../../backup/pipeline/reader.ts';
import { writeSealedBackup } from '../../backup/pipeline/writer.ts';
import { STORE_CONTRACT } from '../../backup/store/contract.ts';
import { S3Store } from '../../backup/store/s3.ts';
import {
  createBucket,
  killVersitygw,
  type S3Server,
  s3Client,
  startVersitygw,
  stopVersitygw,
} from '../fixtures/versitygw.ts';

const NAME = 'backup-store';
const PORT = 7300;
const BUCKET = 'tidemark-it';
const MiB = 1 << 20;
let server: S3Server;
let raw: S3Client;
const stores: S3Store[] = [];

function store(prefix: string, partSize = 5 * MiB): S3Store {
  const s = new S3Store({
    endpoint: server.endpoint,
    region: server.region,
    bucket: BUCKET,
    prefix,
    forcePathStyle: true,
    credentials: server.credentials,
    partSize,
    queueSize: 2,
  });
  stores.push(s);
  return s;
}

beforeAll(async () => {
  const t0 = Date.now();
  server = startVersitygw(NAME, PORT, { fresh: true });
  await createBucket(server, BUCKET);
  raw = s3Client(server);
  console.log(`versitygw (install if needed + start): ${Date.now() - t0} ms`);
}, 900_000);
afterAll(async () => {
  for (const s of stores) await s.close();
  raw?.destroy();
  stopVersitygw(NAME);
});

describe('S3Store: the store contract on versitygw', () => {
  for (const [i, c] of STORE_CONTRACT.entries()) {
    it(c.name, () => c.run(store('contract/'), `c${i}/`));
  }

  it('names the fix when the bucket is missing or the secret is wrong', async () => {
    await expect(S3Store.open({ ...opts(), bucket: 'no-such-bucket' })).rejects.toMatchObject({
      code: 'BACKUP_STORE',
      retriable: false,
      message: expect.stringMatching(/bucket does not exist/),
    });
    const nob = new S3Store({ ...opts(), bucket: 'no-such-bucket' });
    stores.push(nob);
    await expect(nob.get('x')).rejects.toMatchObject({ code: 'BACKUP_STORE', retriable: false });
    expect(await S3Store.open(opts()).then((s) => s.close())).toBeUndefined();
    const bad = new S3Store({
      ...opts(),
      credentials: { accessKeyId: 'tidemark', secretAccessKey: 'wrong-secret-xyz' },
    });
    stores.push(bad);
    const err = await bad.putIfAbsent('x', Buffer.from('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).code).toBe('BACKUP_STORE');
    expect((err as TidemarkError).message).toMatch(/credentials/);
    expect(JSON.stringify({ err, ctx: (err as TidemarkError).context, bad })).not.toContain('wrong-secret-xyz');
  });
});

function opts() {
  return {
    endpoint: server.endpoint,
    region: server.region,
    bucket: BUCKET,
    forcePathStyle: true,
    credentials: server.credentials,
  };
}

describe('the store server crashes mid-piece', () => {
  it('the backup fails with a retriable BACKUP_STORE and, after a restart, nothing is under the piece key', async () => {
    const s = store('crash/');
    let made = 0;
    const source = new Readable({
      read() {
        // ~50 MiB/s: the kill lands while the first piece is being uploaded.
        setTimeout(() => {
          made += MiB;
          this.push(made > 64 * MiB ? null : randomBytes(MiB));
        }, 20);
      },
    });
    const ac = new AbortController();
    const killer = setTimeout(() => killVersitygw(NAME), 400);
    const err = await writeSealedBackup({
      store: s,
      source,
      backupId: 'it-crash-1',
      master: new MasterKey(randomBytes(32), 'it'),
      blockSize: MiB,
      pieceSize: 48 * MiB,
      signal: ac.signal,
    }).catch((e: unknown) => e);
    clearTimeout(killer);
    startVersitygw(NAME, PORT); // first, so a failed assertion below does not leave the next tests without it
    expect(made).toBeLessThan(48 * MiB); // it failed inside the first piece
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).code, (err as Error).message).toBe('BACKUP_STORE');
    expect((err as TidemarkError).retriable).toBe(true);
    expect(await s.head('it-crash-1/piece-000001')).toBeNull();
    const left = [];
    for await (const o of s.list('it-crash-1/')) left.push(o);
    expect(left).toEqual([]);
  });
});

describe('pipeline on S3', () => {
  const master = new MasterKey(randomBytes(32), 'it');
  const TOTAL = 64 * MiB;

  it('64 MiB through writer → S3 (multipart) → reader: equal by SHA-256; a tampered object is refused', async () => {
    const s = store('pipe/');
    const sent = createHash('sha256');
    let made = 0;
    const source = new Readable({
      read() {
        if (made >= TOTAL) return void this.push(null);
        // Half random (stored), half repetitive (zstd): both chunk kinds cross the wire.
        const b = made % (2 * MiB) === 0 ? randomBytes(MiB) : Buffer.alloc(MiB, `row ${made} `);
        made += MiB;
        sent.update(b);
        this.push(b);
      },
    });
    const t0 = Date.now();
    const w = await writeSealedBackup({
      store: s,
      source,
      backupId: 'it-full-1',
      master,
      blockSize: MiB,
      pieceSize: 24 * MiB,
    });
    const tw = Date.now() - t0;
    expect(w.pieces.length).toBeGreaterThan(1);
    // Multipart really used: the server reports the parts of the stored piece.
    const first = w.pieces[0] as (typeof w.pieces)[number];
    const h = await raw.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `pipe/${first.key}`, PartNumber: 1 }));
    expect(h.PartsCount ?? 0).toBeGreaterThan(1);
    const t1 = Date.now();
    /** Reads the backup back: SHA-256 of what came out, the block lengths, the error it ended with. */
    const restore = async () => {
      const got = createHash('sha256');
      const blocks: number[] = [];
      const r = readSealedBackup({
        store: s,
        backupId: 'it-full-1',
        master,
        encryption: w.encryption,
        pieces: w.pieces,
      });
      try {
        for await (const b of r as AsyncIterable<Buffer>) {
          got.update(b);
          blocks.push(b.length);
        }
        return { sha: got.digest('hex'), blocks, err: undefined };
      } catch (err) {
        return { sha: got.digest('hex'), blocks, err };
      }
    };
    const back = await restore();
    console.log(
      `64 MiB: write ${tw} ms, read ${Date.now() - t1} ms, ${w.pieces.length} pieces, parts of piece 1: ${h.PartsCount}`,
    );
    expect(back.err).toBeUndefined();
    expect(back.blocks.reduce((a, b) => a + b, 0)).toBe(TOTAL);
    expect(back.sha).toBe(sent.digest('hex'));

    // Tamper: one byte of the second piece changed in the bucket behind the store's back.
    const victim = w.pieces[1] as (typeof w.pieces)[number];
    const res = await raw.send(new GetObjectCommand({ Bucket: BUCKET, Key: `pipe/${victim.key}` }));
    const bytes = Buffer.from(
      await (res.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
    );
    const at = Math.floor(bytes.length / 2);
    bytes[at] = (bytes[at] as number) ^ 0x01;
    await raw.send(new PutObjectCommand({ Bucket: BUCKET, Key: `pipe/${victim.key}`, Body: bytes }));
    const { blocks: released, err } = await restore();
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).code).toBe('BACKUP_INTEGRITY');
    expect((err as TidemarkError).context['pieceKey']).toBe(victim.key);
    // Only the chunks before the damaged one came out: piece 1 whole, then piece 2 up to the chunk.
    const chunk = (err as TidemarkError).context['chunk'] as number;
    expect(released.length).toBe(first.chunks + chunk);
  });
});

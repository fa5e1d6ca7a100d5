import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../core/errors.ts';
import {
  chunkHeader,
  eofChunk,
  fileChunks,
  payloadChunk,
  Reassembler,
  removeChunk,
  renameChunk,
  seekChunk,
} from '../test/fixtures/mbstream-kit.ts';
import { REPO_ROOT } from '../test/fixtures/mariadb.ts';
import { FLAG_IGNORABLE, FLAG_REWRITE, type MbstreamChunk, MbstreamParser } from './mbstream.ts';

function parseAll(stream: Buffer, splits: number[] = []): MbstreamChunk[] {
  const p = new MbstreamParser();
  const out: MbstreamChunk[] = [];
  let from = 0;
  for (const at of [...splits, stream.length]) {
    out.push(...p.push(stream.subarray(from, at)));
    from = at;
  }
  p.end();
  return out;
}

function corruption(fn: () => unknown): TidemarkError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).code).toBe('MBSTREAM_CORRUPT');
    return err as TidemarkError;
  }
  throw new Error('expected MBSTREAM_CORRUPT, nothing was thrown');
}

function flip(buf: Buffer, at: number, mask: number): void {
  buf.writeUInt8(buf.readUInt8(at) ^ mask, at);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('MbstreamParser', () => {
  const a = Buffer.from('hello world, this is file a');
  const stream = Buffer.concat([
    payloadChunk('a', 0, a.subarray(0, 11)),
    payloadChunk('db/b.ibd', 0, 'bbbb'),
    payloadChunk('a', 11, a.subarray(11)),
    eofChunk('db/b.ibd'),
    eofChunk('a'),
  ]);

  it('yields CRC-checked payload and EOF chunks with file and stream offsets', () => {
    const chunks = parseAll(stream);
    expect(chunks.map((c) => `${c.type}:${c.path}`)).toEqual([
      'payload:a',
      'payload:db/b.ibd',
      'payload:a',
      'eof:db/b.ibd',
      'eof:a',
    ]);
    const third = chunks[2];
    expect(third?.type === 'payload' && third.offset).toBe(11n);
    expect(third?.streamOffset).toBe(
      BigInt(payloadChunk('a', 0, a.subarray(0, 11)).length + payloadChunk('db/b.ibd', 0, 'bbbb').length),
    );
    const r = new Reassembler();
    r.apply(chunks);
    expect(r.files.get('a')?.equals(a)).toBe(true);
    expect(r.files.get('db/b.ibd')?.toString()).toBe('bbbb');
  });

  it('survives every split point of the stream (one byte at a time too)', () => {
    const show = (c: MbstreamChunk): string =>
      JSON.stringify({ ...c, payload: 'payload' in c ? c.payload.toString('hex') : null }, (_k, v) =>
        typeof v === 'bigint' ? String(v) : v,
      );
    const whole = parseAll(stream).map(show);
    for (let at = 1; at < stream.length; at++) {
      expect(parseAll(stream, [at]).map(show), `split at ${at}`).toEqual(whole);
    }
    const bytewise = parseAll(
      stream,
      Array.from({ length: stream.length - 1 }, (_, i) => i + 1),
    );
    expect(bytewise.map(show)).toEqual(whole);
  });

  it('holds at most one chunk: a large file streamed in 1 MiB chunks comes out chunk by chunk', () => {
    const big = Buffer.alloc(5 * 1024 * 1024 + 123, 7);
    const bytes = fileChunks('ibdata1', big, 1024 * 1024);
    const p = new MbstreamParser();
    let biggest = 0;
    let total = 0;
    for (let off = 0; off < bytes.length; off += 64 * 1024) {
      for (const c of p.push(bytes.subarray(off, off + 64 * 1024))) {
        if (c.type === 'payload') {
          biggest = Math.max(biggest, c.payload.length);
          total += c.payload.length;
        }
      }
    }
    p.end();
    expect(biggest).toBe(1024 * 1024);
    expect(total).toBe(big.length);
    expect(p.stats.filesClosed).toBe(1);
  });

  it('keepPayload: other files are CRC-checked in place at every split, their payloads empty, lengths kept', () => {
    const only = (stream_: Buffer, splits: number[]): MbstreamChunk[] => {
      const p = new MbstreamParser({ keepPayload: (path) => path === 'a' });
      const out: MbstreamChunk[] = [];
      let from = 0;
      for (const at of [...splits, stream_.length]) {
        out.push(...p.push(stream_.subarray(from, at)));
        from = at;
      }
      p.end();
      return out;
    };
    for (let at = 1; at < stream.length; at += 3) {
      const got = only(stream, [at]).filter((c) => c.type === 'payload');
      expect(got.map((c) => [c.path, c.length, 'payload' in c ? c.payload.toString() : ''])).toEqual([
        ['a', 11, 'hello world'],
        ['db/b.ibd', 4, ''],
        ['a', a.length - 11, a.subarray(11).toString()],
      ]);
    }
    const bad = payloadChunk('db/t1.ibd', 0, 'some payload that spans the split');
    flip(bad, bad.length - 3, 0x01);
    const broken = Buffer.concat([bad, eofChunk('db/t1.ibd')]);
    for (const at of [5, bad.length - 10, bad.length - 2]) {
      expect(corruption(() => only(broken, [at])).message).toContain('CRC32 mismatch');
    }
  });

  it('reports a CRC failure naming the path and the stream offset of the chunk', () => {
    const good = payloadChunk('a', 0, 'first');
    const bad = payloadChunk('db/t1.ibd', 0, 'some payload');
    flip(bad, bad.length - 3, 0x01); // one payload bit
    const err = corruption(() => parseAll(Buffer.concat([good, bad, eofChunk('db/t1.ibd'), eofChunk('a')])));
    expect(err.message).toContain("'db/t1.ibd'");
    expect(err.message).toContain(`stream offset ${good.length}`);
    expect(err.message).toContain('CRC32 mismatch');
    expect(err.context).toMatchObject({ path: 'db/t1.ibd', streamOffset: String(good.length) });
    const p = new MbstreamParser();
    expect(() => p.push(Buffer.concat([good, bad]))).toThrow('CRC32 mismatch');
    expect(() => p.push(eofChunk('db/t1.ibd'))).toThrow('CRC32 mismatch'); // the stream is lost: no resync
  });

  it('refuses a wrong magic, an oversized path, an unknown type and an oversized chunk', () => {
    const wrongMagic = Buffer.from(eofChunk('a'));
    wrongMagic.write('A', 0);
    expect(corruption(() => parseAll(wrongMagic)).message).toContain('wrong chunk magic');
    const longPath = chunkHeader('E', 'x'.repeat(600));
    expect(corruption(() => parseAll(longPath)).message).toContain('path length 600');
    expect(corruption(() => parseAll(chunkHeader('X', 'a'))).message).toContain('unknown chunk type 0x58');
    const p = new MbstreamParser({ maxChunkBytes: 10 });
    expect(corruption(() => p.push(payloadChunk('a', 0, 'eleven byte'))).message).toContain(
      'exceeds the 10-byte limit',
    );
  });

  it('skips (but CRC-checks) an unknown chunk type flagged ignorable', () => {
    const ign = payloadChunk('a', 0, 'future', FLAG_IGNORABLE, 'Z');
    const chunks = parseAll(Buffer.concat([payloadChunk('a', 0, 'x'), ign, eofChunk('a')]));
    expect(chunks.map((c) => c.type)).toEqual(['payload', 'ignored', 'eof']);
    const broken = Buffer.from(ign);
    flip(broken, broken.length - 1, 0xff);
    expect(corruption(() => parseAll(Buffer.concat([broken, eofChunk('a')]))).message).toContain('CRC32 mismatch');
  });

  it('refuses a truncated stream and a file without its EOF chunk', () => {
    const whole = Buffer.concat([payloadChunk('a', 0, 'abc'), eofChunk('a')]);
    expect(corruption(() => parseAll(whole.subarray(0, whole.length - 1))).message).toContain('ends inside a chunk');
    const noEof = payloadChunk('db/t.ibd', 0, 'abc');
    const err = corruption(() => parseAll(noEof));
    expect(err.message).toContain("'db/t.ibd'");
    expect(err.message).toContain('still open');
  });

  it('checks the per-file order mbstream -x checks: offsets, reopen, rename/remove of open files', () => {
    expect(
      corruption(() => parseAll(Buffer.concat([payloadChunk('a', 0, 'abc'), payloadChunk('a', 5, 'x')]))).message,
    ).toContain('out-of-order payload: file offset 5, expected 3');
    expect(
      corruption(() => parseAll(Buffer.concat([payloadChunk('a', 0, 'abc'), eofChunk('a'), payloadChunk('a', 0, 'x')])))
        .message,
    ).toContain('already closed');
    expect(
      corruption(() => parseAll(Buffer.concat([payloadChunk('a', 0, 'abc'), renameChunk('a', 'b')]))).message,
    ).toContain('open file');
    expect(
      corruption(() => parseAll(Buffer.concat([payloadChunk('a', 0, 'abc'), removeChunk('a')]))).message,
    ).toContain('open file');
    expect(corruption(() => parseAll(eofChunk('../etc/passwd'))).message).toContain('escapes');
    expect(corruption(() => parseAll(eofChunk('/etc/passwd'))).message).toContain('escapes');
  });

  it('applies seek, rename, remove and REWRITE like mbstream -x', () => {
    const chunks = parseAll(
      Buffer.concat([
        payloadChunk('a', 0, 'hello'),
        seekChunk('a', 1),
        payloadChunk('a', 1, 'EL'),
        eofChunk('a'),
        fileChunks('old.frm', Buffer.from('frm')),
        renameChunk('old.frm', 'new.frm'),
        fileChunks('gone', Buffer.from('x')),
        removeChunk('gone'),
        payloadChunk('log', 0, 'first version'),
        eofChunk('log'),
        payloadChunk('log', 0, 'v2', FLAG_REWRITE),
        eofChunk('log'),
        eofChunk('empty'),
      ]),
    );
    const r = new Reassembler();
    r.apply(chunks);
    expect(Object.fromEntries([...r.files].map(([k, v]) => [k, v.toString()]))).toEqual({
      a: 'hELlo',
      'new.frm': 'frm',
      log: 'v2',
      empty: '',
    });
  });

  it('reads a stream written by the real mbstream -c (MariaDB 10.11.19)', () => {
    const real = readFileSync(resolve(REPO_ROOT, 'test/fixtures/mbstream/mbstream-c-10.11.19.xb'));
    const chunks = parseAll(real, [1000, 1001, 20000]);
    const r = new Reassembler();
    r.apply(chunks);
    expect([...r.files.keys()].sort()).toEqual([
      'db1/t.ibd',
      'empty',
      'xtrabackup_binlog_info',
      'xtrabackup_checkpoints',
    ]);
    // db1/t.ibd was `seq 1 6000`; the others are the text below.
    const seq = Buffer.from(`${Array.from({ length: 6000 }, (_, i) => i + 1).join('\n')}\n`);
    expect(sha(r.files.get('db1/t.ibd') as Buffer)).toBe(sha(seq));
    expect(r.files.get('xtrabackup_binlog_info')?.toString()).toBe('mysql-bin.000002\t1187\t0-3770-12\n');
    expect(r.files.get('xtrabackup_checkpoints')?.toString()).toContain('to_lsn = 47512');
    expect(r.files.get('empty')?.length).toBe(0);
    const flipped = Buffer.from(real);
    flip(flipped, real.indexOf('db1/t.ibd') + 200, 0x10); // inside t.ibd's payload
    expect(corruption(() => parseAll(flipped)).message).toContain("'db1/t.ibd'");
  });

  it('property: random files, chunk sizes, interleaving and read sizes reassemble exactly; a flipped payload byte never passes', () => {
    const fileArb = fc.record({
      name: fc.stringMatching(/^[a-z]{1,8}(\/[a-z]{1,8})?$/),
      data: fc.uint8Array({ maxLength: 3000, size: 'max' }),
      chunk: fc.integer({ min: 1, max: 700 }),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(fileArb, { selector: (f) => f.name, minLength: 1, maxLength: 6 }),
        fc.array(fc.integer({ min: 1, max: 500 }), { minLength: 1, maxLength: 8 }),
        fc.nat(),
        (files, reads, flipSeed) => {
          // interleave the files' chunks round-robin, as mariadb-backup's parallel copy threads do
          const queues = files.map((f) => {
            const data = Buffer.from(f.data);
            const parts: Buffer[] = [];
            for (let off = 0; off < data.length; off += f.chunk)
              parts.push(payloadChunk(f.name, off, data.subarray(off, off + f.chunk)));
            parts.push(eofChunk(f.name));
            return parts;
          });
          const parts: Buffer[] = [];
          const payloadAt: number[] = []; // stream offsets of payload bytes
          let at = 0;
          while (queues.some((q) => q.length > 0)) {
            for (const q of queues) {
              const next = q.shift();
              if (next === undefined) continue;
              if (next[9] === 0x50) {
                const pathLen = next.readUInt32LE(10);
                for (let i = 14 + pathLen + 20; i < next.length; i++) payloadAt.push(at + i);
              }
              parts.push(next);
              at += next.length;
            }
          }
          const stream = Buffer.concat(parts);
          const splits: number[] = [];
          for (let pos = 0, i = 0; pos < stream.length; i++) {
            pos += reads[i % reads.length] as number;
            if (pos < stream.length) splits.push(pos);
          }
          const r = new Reassembler();
          r.apply(parseAll(stream, splits));
          for (const f of files) expect(r.files.get(f.name)?.equals(Buffer.from(f.data)), f.name).toBe(true);
          if (payloadAt.length > 0) {
            const bad = Buffer.from(stream);
            flip(bad, payloadAt[flipSeed % payloadAt.length] as number, 1 << (flipSeed % 8));
            expect(corruption(() => parseAll(bad, splits)).message).toContain('CRC32 mismatch');
          }
        },
      ),
      { seed: 13, numRuns: 300 },
    );
  });
});

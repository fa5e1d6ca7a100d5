import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import { makeManifest } from '../../test/fixtures/backup-catalog-kit.ts';
import { encodeManifest, type Manifest, manifestKey, starKey } from '../manifest.ts';
import { DirStore } from '../store/dir.ts';
import { copyBackups } from './copy.ts';

let root: string;
let from: DirStore;
let to: DirStore;

beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), 'tm-copy-'));
  from = await DirStore.open(join(root, 'from'));
  to = await DirStore.open(join(root, 'to'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** Seals a fake backup in `from`: pieces of random bytes, a manifest with their sizes and hashes. */
async function seal(
  type: 'full' | 'incremental',
  at: number,
  sizes: number[],
  over: Partial<Manifest> = {},
): Promise<Manifest> {
  const base = makeManifest(type, new Date(Date.UTC(2026, 11, 1, at)), over);
  const pieces = [];
  for (const [i, size] of sizes.entries()) {
    const bytes = randomBytes(size);
    const key = `${base.id}/piece-${String(i + 1).padStart(6, '0')}`;
    await from.put(key, Readable.from([bytes]));
    pieces.push({ key, size: BigInt(size), sha256: createHash('sha256').update(bytes).digest('hex'), chunks: 1 });
  }
  const m = { ...base, pieces };
  await from.putIfAbsent(manifestKey(m.id), encodeManifest(m));
  return m;
}

const file = (store: 'from' | 'to', key: string) => join(root, store, key);
const has = async (key: string) => (await to.head(key)) !== null;

describe('copyBackups', () => {
  it('copies every sealed backup, parents first, with its star; the manifest bytes are the source bytes', async () => {
    const full = await seal('full', 1, [3000, 100]);
    const inc = await seal('incremental', 2, [700], { parent: full.id, chain: full.id });
    await from.put(starKey(full.id), Readable.from([Buffer.from('{"star":1}')]));
    await from.put(`${'20261201T050000Z-nightly-full-abcdef'}/piece-000001`, Readable.from([Buffer.from('orphan')]));
    const r = await copyBackups({ from, to, dryRun: false });
    expect(r.copied.map((c) => [c.id, c.pieces, c.copiedPieces])).toEqual([
      [full.id, 2, 2],
      [inc.id, 1, 1],
    ]);
    expect(r.stars).toEqual([full.id]);
    for (const k of [manifestKey(full.id), manifestKey(inc.id), ...full.pieces.map((p) => p.key), starKey(full.id)])
      expect(readFileSync(file('to', k))).toEqual(readFileSync(file('from', k)));
    expect(await has('20261201T050000Z-nightly-full-abcdef/piece-000001')).toBe(false); // unsealed: not copied

    const again = await copyBackups({ from, to, dryRun: false });
    expect(again.copied).toEqual([]);
    expect(again.present).toEqual([full.id, inc.id]);
  });

  it('refuses a piece whose bytes do not match the manifest, naming backup and piece, and writes nothing for it', async () => {
    const m = await seal('full', 1, [4000, 4000]);
    const bad = m.pieces[1]?.key as string;
    const bytes = readFileSync(file('from', bad));
    bytes[1234] = (bytes[1234] as number) ^ 0x01;
    writeFileSync(file('from', bad), bytes);
    const err = await copyBackups({ from, to, dryRun: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).code).toBe('BACKUP_COPY_MISMATCH');
    expect((err as TidemarkError).message).toContain(`backup '${m.id}' piece '${bad}'`);
    expect((err as TidemarkError).message).toContain('SHA-256');
    expect(await has(bad)).toBe(false);
    expect(await has(manifestKey(m.id))).toBe(false);
    expect(await has(m.pieces[0]?.key as string)).toBe(true); // the good piece before it: reused on resume
  });

  it('resumes: a piece already there with the right hash is skipped, one with the wrong bytes is copied again', async () => {
    const m = await seal('full', 1, [2000, 2000, 2000]);
    const [p1, p2] = m.pieces.map((p) => p.key) as [string, string];
    await to.put(p1, Readable.from([readFileSync(file('from', p1))]));
    await to.put(p2, Readable.from([randomBytes(2000)])); // right size, wrong bytes
    const r = await copyBackups({ from, to, dryRun: false });
    expect(r.copied.map((c) => c.copiedPieces)).toEqual([2]);
    expect(readFileSync(file('to', p2))).toEqual(readFileSync(file('from', p2)));
  });

  it('a dry run writes nothing; a jobs filter copies only those jobs', async () => {
    const a = await seal('full', 1, [500]);
    const b = await seal('full', 2, [500], { job: 'weekly' });
    const dry = await copyBackups({ from, to, dryRun: true });
    expect(dry.copied.map((c) => c.id)).toEqual([a.id, b.id]);
    const listed: string[] = [];
    for await (const o of to.list('')) listed.push(o.key);
    expect(listed).toEqual([]);
    const only = await copyBackups({ from, to, dryRun: false, jobs: ['weekly'] });
    expect(only.copied.map((c) => c.id)).toEqual([b.id]);
    expect(await has(manifestKey(a.id))).toBe(false);
  });

  it('stops at an abort; the next copy finishes', async () => {
    await seal('full', 1, [3000, 3000]);
    const ac = new AbortController();
    ac.abort();
    await expect(copyBackups({ from, to, dryRun: false, signal: ac.signal })).rejects.toThrow();
    const r = await copyBackups({ from, to, dryRun: false });
    expect(r.copied).toHaveLength(1);
  });
});

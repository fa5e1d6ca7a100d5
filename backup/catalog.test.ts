import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../core/errors.ts';
import { makeManifest } from '../test/fixtures/backup-catalog-kit.ts';
import { Catalog } from './catalog.ts';
import { expire } from './expire.ts';
import { encodeManifest, type Manifest, manifestKey, newBackupId, starKey } from './manifest.ts';
import type { BackupStore, GetRange, StoredObject } from './store.ts';

async function drain(body: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of body) parts.push(Buffer.from(p as Buffer));
  return Buffer.concat(parts);
}

/** A BackupStore in memory, for unit tests of the catalog. */
class MemoryStore implements BackupStore {
  name = 'memory:';
  readonly objects = new Map<string, Buffer>();

  async put(key: string, body: Readable): Promise<StoredObject> {
    const bytes = await drain(body);
    this.objects.set(key, bytes);
    return { key, size: BigInt(bytes.length) };
  }

  async putIfAbsent(key: string, body: Buffer): Promise<boolean> {
    if (this.objects.has(key)) return false;
    this.objects.set(key, Buffer.from(body));
    return true;
  }

  async get(key: string, range?: GetRange): Promise<Readable> {
    const b = this.objects.get(key);
    if (b === undefined)
      throw new TidemarkError(`no object '${key}' in ${this.name}`, { code: 'IO', context: { key } });
    const start = Number(range?.start ?? 0n);
    const end = range?.end === undefined ? b.length : Number(range.end) + 1;
    return Readable.from([b.subarray(start, end)]);
  }

  async head(key: string): Promise<StoredObject | null> {
    const b = this.objects.get(key);
    return b === undefined ? null : { key, size: BigInt(b.length) };
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    for (const key of [...this.objects.keys()].sort()) {
      if (key.startsWith(prefix)) yield { key, size: BigInt((this.objects.get(key) as Buffer).length) };
    }
  }

  async delete(key: string): Promise<void> {
    this.objects.delete(key);
  }

  async close(): Promise<void> {}
}

const DAY = 86_400_000;
const T0 = new Date('2026-11-01T02:00:00Z');
const at = (days: number): Date => new Date(T0.getTime() + days * DAY);

/** Writes a sealed backup the way the runner will: pieces first, the manifest last. */
async function seal(store: MemoryStore, m: Manifest): Promise<Manifest> {
  for (const p of m.pieces) await store.put(p.key, Readable.from([Buffer.alloc(Number(p.size), 1)]));
  expect(await store.putIfAbsent(manifestKey(m.id), encodeManifest(m))).toBe(true);
  return m;
}

/** F(day 0) ─ i(1) ─ i(2) ─ d(3); F(7) ─ i(8) */
async function twoChains(store: MemoryStore): Promise<Manifest[]> {
  const f1 = await seal(store, makeManifest('full', at(0)));
  const i1 = await seal(store, makeManifest('incremental', at(1), { parent: f1.id, chain: f1.id }));
  const i2 = await seal(store, makeManifest('incremental', at(2), { parent: i1.id, chain: f1.id }));
  const d1 = await seal(store, makeManifest('differential', at(3), { parent: f1.id, chain: f1.id }));
  const f2 = await seal(store, makeManifest('full', at(7)));
  const i3 = await seal(store, makeManifest('incremental', at(8), { parent: f2.id, chain: f2.id }));
  return [f1, i1, i2, d1, f2, i3];
}

function code(err: unknown): string {
  return err instanceof TidemarkError ? err.code : String(err);
}

describe('Catalog', () => {
  it('rebuilds from the store: list, show, chain-of; a backup without a manifest does not exist', async () => {
    const store = new MemoryStore();
    const [f1, i1, i2, d1, f2, i3] = await twoChains(store);
    const unsealed = makeManifest('incremental', at(9), { parent: i3?.id, chain: f2?.id });
    await store.put(unsealed.pieces[0]?.key as string, Readable.from([Buffer.from('partial')]));
    const cat = new Catalog(':memory:', store.name);
    const report = await cat.rebuild(store);
    expect(report).toEqual({ backups: 6, stars: 0, damaged: [] });
    expect(cat.list().map((b) => b.id)).toEqual([f1, i1, i2, d1, f2, i3].map((m) => m?.id));
    expect(cat.list({ type: 'full' }).map((b) => b.id)).toEqual([f1?.id, f2?.id]);
    expect(cat.list({ job: 'other' })).toEqual([]);
    expect(cat.show(i2?.id as string).manifest).toEqual(i2);
    expect(cat.chainOf(i2?.id as string).map((m) => m.id)).toEqual([f1?.id, i1?.id, i2?.id]);
    expect(cat.chainOf(d1?.id as string).map((m) => m.id)).toEqual([f1?.id, d1?.id]);
    expect(cat.list()[0]?.bytes).toBe(1234n);
    let err: unknown;
    try {
      cat.show(unsealed.id);
    } catch (e) {
      err = e;
    }
    expect(code(err)).toBe('BACKUP_NOT_FOUND');
  });

  it('reports damaged manifests and missing or short pieces, and refuses a broken chain', async () => {
    const store = new MemoryStore();
    const [f1, i1, i2] = await twoChains(store);
    store.objects.set(i1?.pieces[0]?.key as string, Buffer.from('short'));
    const bogus = newBackupId('nightly', 'full', at(20), 'abcdef');
    store.objects.set(manifestKey(bogus), Buffer.from('{"format":"tidemark-backup-manifest"'));
    const cat = new Catalog(':memory:', store.name);
    const r = await cat.rebuild(store);
    expect(r.damaged.map((d) => d.key)).toEqual([i1?.pieces[0]?.key, manifestKey(bogus)]);
    expect(r.damaged[0]?.problem).toContain('has 5 bytes, manifest says 1234');
    store.objects.delete(manifestKey(i1?.id as string));
    await cat.rebuild(store);
    let err: unknown;
    try {
      cat.chainOf(i2?.id as string);
    } catch (e) {
      err = e;
    }
    expect(code(err)).toBe('BACKUP_CHAIN_BROKEN');
    expect((err as Error).message).toContain(`parent '${i1?.id}'`);
    expect(cat.chainOf(f1?.id as string)).toHaveLength(1);
  });

  it('stars and unstars through the store; a rebuilt cache sees the star', async () => {
    const store = new MemoryStore();
    const [, , i2] = await twoChains(store);
    const cat = new Catalog(':memory:', store.name);
    await cat.rebuild(store);
    await cat.star(store, i2?.id as string, 'standalone', 'year-end 2026', at(30));
    expect(store.objects.has(starKey(i2?.id as string))).toBe(true);
    const fresh = new Catalog(':memory:', store.name);
    expect((await fresh.rebuild(store)).stars).toBe(1);
    expect(fresh.show(i2?.id as string).star).toEqual({
      id: i2?.id,
      kind: 'standalone',
      note: 'year-end 2026',
      starredAt: at(30),
    });
    await fresh.unstar(store, i2?.id as string);
    expect(store.objects.has(starKey(i2?.id as string))).toBe(false);
    expect(fresh.list().every((b) => b.star === null)).toBe(true);
    await expect(fresh.star(store, 'nope', 'pitr', '', at(30))).rejects.toThrow("no backup 'nope'");
  });

  it('finds orphans: unsealed prefixes past the grace period, unlisted keys of sealed ones; foreign keys are left alone', async () => {
    const store = new MemoryStore();
    const [f1] = await twoChains(store);
    const old = makeManifest('full', at(10));
    const young = makeManifest('full', at(11));
    await store.put(old.pieces[0]?.key as string, Readable.from([Buffer.from('x')]));
    await store.put(young.pieces[0]?.key as string, Readable.from([Buffer.from('x')]));
    await store.put(`${f1?.id}/piece-000099`, Readable.from([Buffer.from('retry leftover')]));
    await store.put('README.txt', Readable.from([Buffer.from('not ours')]));
    const cat = new Catalog(':memory:', store.name);
    await cat.rebuild(store);
    const orphans = await cat.orphans(store, new Date(at(11).getTime() + 30 * 60_000), 60 * 60_000);
    expect(orphans.map((o) => o.key).sort()).toEqual([old.pieces[0]?.key, `${f1?.id}/piece-000099`].sort());
    expect(orphans.find((o) => o.key === old.pieces[0]?.key)?.reason).toContain('no manifest');
  });

  it('refuses a cache file of another store, and a store other than its own', async () => {
    const store = new MemoryStore();
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-catalog-'));
    try {
      const file = join(dir, 'catalog.sqlite');
      const cat = new Catalog(file, store.name);
      await cat.rebuild(store);
      await expect(cat.orphans(Object.assign(new MemoryStore(), { name: 'dir:/elsewhere' }), at(0), 0)).rejects.toThrow(
        'used with store',
      );
      cat.close();
      expect(() => new Catalog(file, 's3://bucket/x')).toThrow("belongs to store 'memory:'");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('expire', () => {
  it('dry run deletes nothing; a real run deletes manifests first, then pieces, and the orphans', async () => {
    const store = new MemoryStore();
    const [f1, i1, i2, d1, f2, i3] = await twoChains(store);
    const orphan = makeManifest('full', at(5));
    await store.put(orphan.pieces[0]?.key as string, Readable.from([Buffer.from('x')]));
    const cat = new Catalog(':memory:', store.name);
    await cat.rebuild(store);
    await cat.star(store, i1?.id as string, 'standalone', 'audit', at(9));
    const before = new Map(store.objects);
    const opts = { job: 'nightly', policy: { chains: 1 }, now: at(9), graceMs: 3_600_000, dryRun: true };
    const dry = await expire(cat, store, opts);
    expect(store.objects).toEqual(before);
    expect(dry.expired.map((d) => d.id)).toEqual([i2?.id, d1?.id]);
    expect(dry.keep.map((d) => d.id)).toEqual([f1?.id, i1?.id, f2?.id, i3?.id]);
    const deletes: string[] = [];
    const spy = store.delete.bind(store);
    store.delete = async (key: string) => {
      deletes.push(key);
      await spy(key);
    };
    const real = await expire(cat, store, { ...opts, dryRun: false });
    expect(real.deletedObjects).toBe(5);
    expect(deletes.indexOf(manifestKey(i2?.id as string))).toBeLessThan(deletes.indexOf(i2?.pieces[0]?.key as string));
    expect([...store.objects.keys()].some((k) => k.startsWith(`${i2?.id}/`) || k.startsWith(`${orphan.id}/`))).toBe(
      false,
    );
    expect(cat.list().map((b) => b.id)).toEqual([f1?.id, i1?.id, f2?.id, i3?.id]);
    expect(cat.chainOf(i1?.id as string)).toHaveLength(2);
  });
});

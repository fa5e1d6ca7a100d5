/**
 * The backup store contract (backup/store.ts), as cases any store must pass: the directory store runs them in a
 * unit test (dir.test.ts), the S3 store against a real versitygw in test/it/backup-store.it.test.ts. Each case
 * gets its own key prefix, so cases can share a bucket. Checks use node:assert (no test runner here): a test
 * file wraps each case in its own `it`.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { TidemarkError } from '../../core/errors.ts';
import type { BackupStore, StoredObject } from '../store.ts';

export interface ContractCase {
  readonly name: string;
  run(store: BackupStore, prefix: string): Promise<void>;
}

async function readAll(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of r as AsyncIterable<Buffer>) parts.push(p);
  return Buffer.concat(parts);
}

async function listAll(store: BackupStore, prefix: string): Promise<StoredObject[]> {
  const out: StoredObject[] = [];
  for await (const o of store.list(prefix)) out.push(o);
  return out;
}

/** `total` pseudo-random bytes in `piece`-sized buffers, produced as they are read (a streamed body). */
function generated(seed: string, total: number, piece = 256 << 10): { body: Readable; sha256: () => string } {
  const hash = createHash('sha256');
  let left = total;
  let n = 0;
  const body = new Readable({
    read() {
      if (left === 0) return void this.push(null);
      const len = Math.min(piece, left);
      const b = Buffer.alloc(len);
      createHash('sha256').update(`${seed}:${n++}`).digest().copy(b); // distinct content per buffer
      for (let i = 32; i < len; i += 32) b.copy(b, i, 0, Math.min(32, len - i));
      hash.update(b);
      left -= len;
      this.push(b);
    },
  });
  return { body, sha256: () => hash.digest('hex') };
}

async function expectMissing(p: Promise<unknown>, key: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof TidemarkError, `expected a TidemarkError, got ${String(err)}`);
    assert.equal(err.code, 'IO');
    assert.equal(err.context['key'], key);
    assert.equal(err.context['missing'], true);
    return true;
  });
}

/** A body that yields `good` bytes, then fails. */
function failing(good: Buffer): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(good);
      } else {
        this.destroy(new Error('source broke (contract test)'));
      }
    },
  });
}

export const STORE_CONTRACT: readonly ContractCase[] = [
  {
    name: 'put streams a body and get/head return it whole',
    async run(store, prefix) {
      const key = `${prefix}big/piece-000001`;
      const g = generated(key, 12 * (1 << 20) + 123);
      const o = await store.put(key, g.body);
      assert.deepEqual(o, { key, size: BigInt(12 * (1 << 20) + 123) });
      assert.deepEqual(await store.head(key), o);
      const back = createHash('sha256');
      for await (const p of (await store.get(key)) as AsyncIterable<Buffer>) back.update(p);
      assert.equal(back.digest('hex'), g.sha256());
      const empty = await store.put(`${prefix}empty`, Readable.from([]));
      assert.equal(empty.size, 0n);
      assert.equal((await readAll(await store.get(`${prefix}empty`))).length, 0);
    },
  },
  {
    name: 'put over an existing key replaces it',
    async run(store, prefix) {
      const key = `${prefix}p`;
      await store.put(key, Readable.from([Buffer.from('first version')]));
      await store.put(key, Readable.from([Buffer.from('second')]));
      assert.equal((await readAll(await store.get(key))).toString(), 'second');
      assert.equal((await store.head(key))?.size, 6n);
    },
  },
  {
    name: 'putIfAbsent writes once and never replaces',
    async run(store, prefix) {
      const key = `${prefix}manifest.json`;
      assert.equal(await store.putIfAbsent(key, Buffer.from('{"v":1}')), true);
      assert.equal(await store.putIfAbsent(key, Buffer.from('{"v":2,"longer":true}')), false);
      assert.equal((await readAll(await store.get(key))).toString(), '{"v":1}');
      await store.put(`${prefix}other`, Readable.from([Buffer.from('x')]));
      assert.equal(await store.putIfAbsent(`${prefix}other`, Buffer.from('y')), false);
    },
  },
  {
    name: 'a missing key: get fails with IO naming it, head is null, delete is a no-op',
    async run(store, prefix) {
      const key = `${prefix}nothing-here`;
      await expectMissing(store.get(key), key);
      await expectMissing(store.get(key, { start: 0n, end: 9n }), key);
      assert.equal(await store.head(key), null);
      await store.delete(key);
      await store.delete(`${prefix}no/such/dir/key`);
    },
  },
  {
    name: 'get reads a byte range (end inclusive, or to the end)',
    async run(store, prefix) {
      const key = `${prefix}ranged`;
      const data = randomBytes(3 * (1 << 20) + 7);
      await store.put(key, Readable.from([data]));
      for (const [s, e] of [
        [0, 0],
        [0, 99],
        [5, 5],
        [1 << 20, 2 * (1 << 20) + 3],
        [data.length - 1, data.length - 1],
      ] as const) {
        const got = await readAll(await store.get(key, { start: BigInt(s), end: BigInt(e) }));
        assert.ok(got.equals(data.subarray(s, e + 1)), `range ${s}-${e}`);
      }
      const tail = await readAll(await store.get(key, { start: BigInt(data.length - 1000) }));
      assert.ok(tail.equals(data.subarray(data.length - 1000)), 'open-ended range');
    },
  },
  {
    name: 'list yields every key under the prefix with its size, in key order',
    async run(store, prefix) {
      const keys = ['b/piece-000002', 'a-b', 'a/x/y', 'a/piece-000010', 'a/piece-000002', 'b/manifest.json', 'a.z'];
      for (const [i, k] of keys.entries()) {
        await store.put(`${prefix}${k}`, Readable.from([Buffer.alloc(i + 1, 1)]));
      }
      await store.put(`${prefix.slice(0, -1)}-sibling/k`, Readable.from([Buffer.from('not under the prefix')]));
      const all = await listAll(store, prefix);
      const sorted = [...keys].sort().map((k) => `${prefix}${k}`);
      assert.deepEqual(
        all.map((o) => o.key),
        sorted,
      );
      for (const o of all) assert.equal(o.size, BigInt(keys.indexOf(o.key.slice(prefix.length)) + 1));
      assert.deepEqual(
        (await listAll(store, `${prefix}a/`)).map((o) => o.key),
        ['a/piece-000002', 'a/piece-000010', 'a/x/y'].map((k) => `${prefix}${k}`),
      );
      assert.deepEqual(
        (await listAll(store, `${prefix}a/piece-0000`)).map((o) => o.key),
        ['a/piece-000002', 'a/piece-000010'].map((k) => `${prefix}${k}`),
      );
      assert.deepEqual(await listAll(store, `${prefix}zzz/`), []);
    },
  },
  {
    name: 'list pages through many keys',
    async run(store, prefix) {
      const n = 1100; // above S3's 1000-key page
      const keys = Array.from({ length: n }, (_, i) => `${prefix}k/${String(i).padStart(5, '0')}`);
      for (let i = 0; i < n; i += 50) {
        await Promise.all(keys.slice(i, i + 50).map((k) => store.putIfAbsent(k, Buffer.from(k))));
      }
      const all = await listAll(store, `${prefix}k/`);
      assert.equal(all.length, n);
      assert.deepEqual(
        all.map((o) => o.key),
        keys,
      );
    },
  },
  {
    name: 'delete removes the object from get, head and list',
    async run(store, prefix) {
      await store.put(`${prefix}d/1`, Readable.from([Buffer.from('one')]));
      await store.put(`${prefix}d/2`, Readable.from([Buffer.from('two')]));
      await store.delete(`${prefix}d/1`);
      assert.equal(await store.head(`${prefix}d/1`), null);
      await expectMissing(store.get(`${prefix}d/1`), `${prefix}d/1`);
      assert.deepEqual(
        (await listAll(store, `${prefix}d/`)).map((o) => o.key),
        [`${prefix}d/2`],
      );
      await store.delete(`${prefix}d/1`);
    },
  },
  {
    name: 'a put whose body fails, or that is aborted, leaves nothing under the key',
    async run(store, prefix) {
      const key = `${prefix}broken`;
      await assert.rejects(store.put(key, failing(randomBytes(6 << 20))));
      assert.equal(await store.head(key), null);
      const ac = new AbortController();
      const slow = new Readable({ read() {} });
      slow.push(randomBytes(1 << 20));
      const p = store.put(`${prefix}aborted`, slow, { signal: ac.signal });
      setTimeout(() => ac.abort(new Error('stop (contract test)')), 50);
      await assert.rejects(p);
      assert.equal(await store.head(`${prefix}aborted`), null);
      assert.deepEqual(await listAll(store, prefix), []);
      // An existing object survives a failed put over it.
      await store.put(key, Readable.from([Buffer.from('kept')]));
      await assert.rejects(store.put(key, failing(Buffer.from('half'))));
      assert.equal((await readAll(await store.get(key))).toString(), 'kept');
    },
  },
  {
    name: 'keys that are not relative names are refused',
    async run(store, prefix) {
      for (const bad of ['', '/abs', `${prefix}../up`, `${prefix}a//b`, `${prefix}.hidden`, `${prefix}sp ace`]) {
        await assert.rejects(
          store.put(bad, Readable.from([Buffer.from('x')])),
          (err: unknown) => err instanceof TidemarkError && err.code === 'USAGE',
          `key '${bad}'`,
        );
      }
    },
  },
];

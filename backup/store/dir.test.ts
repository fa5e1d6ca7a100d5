import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORE_CONTRACT } from './contract.ts';
import { DirStore } from './dir.ts';

let root: string;
let store: DirStore;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tm-dirstore-'));
  store = await DirStore.open(join(root, 'store'));
});
afterAll(async () => {
  await store.close();
  await rm(root, { recursive: true, force: true });
});

describe('DirStore: the store contract', () => {
  for (const [i, c] of STORE_CONTRACT.entries()) {
    it(c.name, () => c.run(store, `c${i}/`));
  }
});

describe('DirStore: on disk', () => {
  it('leaves no temp file after puts, failed puts and putIfAbsent, and removes emptied directories', async () => {
    const s = await DirStore.open(join(root, 'disk'));
    await s.put('x/y/z', Readable.from([Buffer.from('abc')]));
    await s.putIfAbsent('x/m', Buffer.from('m'));
    await s.putIfAbsent('x/m', Buffer.from('n'));
    await expect(
      s.put(
        'x/bad',
        new Readable({
          read() {
            this.destroy(new Error('boom'));
          },
        }),
      ),
    ).rejects.toThrow('boom');
    expect(await readdir(join(root, 'disk', '.tmp'))).toEqual([]);
    expect((await stat(join(root, 'disk', 'x/y/z'))).mode & 0o777).toBe(0o600);
    await s.delete('x/y/z');
    expect((await readdir(join(root, 'disk', 'x'))).sort()).toEqual(['m']);
  });

  it('sweepTemp removes only old temp files, and list never shows them', async () => {
    const s = await DirStore.open(join(root, 'sweep'));
    await writeFile(join(root, 'sweep', '.tmp', 'left-by-a-crash'), 'partial');
    const listed = [];
    for await (const o of s.list('')) listed.push(o);
    expect(listed).toEqual([]);
    expect(await s.sweepTemp(60_000)).toBe(0);
    expect(await s.sweepTemp(-1)).toBe(1);
    expect(await readdir(join(root, 'sweep', '.tmp'))).toEqual([]);
  });
});

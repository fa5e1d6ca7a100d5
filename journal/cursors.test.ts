import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CorruptionError, TidemarkError } from '../core/errors.ts';
import { CURSORS_DIR, CursorStore } from './cursors.ts';
import { removeDir, tempDir } from '../test/fixtures/journal-files.ts';

let dir: string;
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await removeDir(dir);
});

describe('CursorStore', () => {
  it('sets, gets, lists and removes named cursors', async () => {
    const c = new CursorStore(dir);
    expect(await c.list()).toEqual([]);
    expect(await c.get('apply:replica1')).toBeNull();
    await c.set('apply:replica1', 42n);
    await c.set('apply:replica2', 18446744073709551615n);
    expect(await c.get('apply:replica1')).toBe(42n);
    const all = await new CursorStore(dir).list();
    expect(all.map((x) => [x.name, x.lsn])).toEqual([
      ['apply:replica1', 42n],
      ['apply:replica2', 18446744073709551615n],
    ]);
    expect(Date.parse(all[0]?.updatedAt ?? '')).toBeGreaterThan(0);
    expect(await c.remove('apply:replica2')).toBe(true);
    expect(await c.remove('apply:replica2')).toBe(false);
    expect((await c.list()).length).toBe(1);
  });

  it('keeps where the frame of its LSN starts, when given; a file without it or with a bad one has no hint', async () => {
    const c = new CursorStore(dir);
    await c.set('apply:r', 7n, { segment: 5n, offset: 1234 });
    expect(await c.read('apply:r')).toMatchObject({ lsn: 7n, at: { segment: 5n, offset: 1234 } });
    await c.set('apply:r', 8n);
    expect((await c.read('apply:r'))?.at).toBeUndefined();
    const file = join(dir, CURSORS_DIR, 'apply:r.cursor');
    for (const at of [{ segment: 5, offset: 1 }, { segment: '5', offset: -1 }, { segment: 'x', offset: 1 }, null]) {
      await writeFile(file, JSON.stringify({ name: 'apply:r', lsn: '9', updatedAt: '', at }));
      const got = await c.read('apply:r');
      expect(got?.lsn).toBe(9n);
      expect(got?.at).toBeUndefined();
    }
  });

  it('updates atomically: no temp files remain, an interrupted update leaves the old value', async () => {
    const c = new CursorStore(dir);
    await c.set('a', 1n);
    // A crash between writing the temp file and renaming it leaves a stray temp file.
    await writeFile(join(dir, CURSORS_DIR, '.a.999.1.tmp'), '{"name":"a","lsn":"9');
    expect(await c.get('a')).toBe(1n);
    expect((await c.list()).map((x) => x.name)).toEqual(['a']);
    const writes: Promise<void>[] = [];
    for (let i = 2; i <= 40; i++) writes.push(c.set('a', BigInt(i)));
    await Promise.all(writes);
    expect(await c.get('a')).toBe(40n);
    const files = await readdir(join(dir, CURSORS_DIR));
    expect(files.filter((f) => f.endsWith('.tmp') && !f.startsWith('.a.999'))).toEqual([]);
  });

  it('refuses bad names and reports a damaged cursor file', async () => {
    const c = new CursorStore(dir);
    expect(() => c.set('../x', 1n)).toThrow(TidemarkError);
    expect(() => c.set('.hidden', 1n)).toThrow(TidemarkError);
    await c.set('b', 5n);
    await writeFile(join(dir, CURSORS_DIR, 'b.cursor'), 'not json');
    await expect(c.get('b')).rejects.toThrow(CorruptionError);
  });
});

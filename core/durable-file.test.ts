import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDurable, writeFileDurable } from './durable-file.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tm-durable-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeFileDurable', () => {
  it('replaces the file and leaves no temp file', async () => {
    const file = join(dir, 'state.json');
    await writeFile(file, 'old');
    await writeFileDurable(file, 'new');
    expect(await readFile(file, 'utf8')).toBe('new');
    await writeFileDurable(file, 'advisory', { sync: false });
    expect(await readFile(file, 'utf8')).toBe('advisory');
    expect(await readdir(dir)).toEqual(['state.json']);
  });

  it('creates with the mode given, replacing a stale temp file when exclusive', async () => {
    const file = join(dir, 'q.sql');
    await writeFile(`${file}.tmp`, 'stale');
    await writeFileDurable(file, 'x', { mode: 0o600, exclusive: true });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['q.sql']);
  });
});

describe('openDurable', () => {
  it('abort keeps the old file and removes the temp file', async () => {
    const file = join(dir, 'script.sql');
    await writeFile(file, 'old');
    const f = await openDurable(file);
    await f.fh.write('half');
    await f.abort();
    expect(await readFile(file, 'utf8')).toBe('old');
    expect(await readdir(dir)).toEqual(['script.sql']);
  });

  it('commit puts what was written in pieces in place', async () => {
    const file = join(dir, 'script.sql');
    const f = await openDurable(file, { tmp: join(dir, '.script.1.tmp') });
    await f.fh.write('a');
    await f.fh.write('b');
    await f.commit();
    expect(await readFile(file, 'utf8')).toBe('ab');
    expect(await readdir(dir)).toEqual(['script.sql']);
  });

  it('a failed rename removes the temp file', async () => {
    const f = await openDurable(join(dir, 'missing-dir', 'x'), { tmp: join(dir, 'x.tmp') });
    await expect(f.commit()).rejects.toThrow(/ENOENT/);
    expect(await readdir(dir)).toEqual([]);
  });
});

/**
 * restoreBackup against a real directory store and sealed pieces, with stand-in tools: `mbstream` writes what it
 * gets on stdin to DIR/stream.bin, `mariadb-backup` appends its arguments to a log (the real tools run in
 * test/it/restore-backup.it.test.ts). Checks the order of work, what reaches the extractor, and the clean-up.
 */
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import { makeManifest } from '../../test/fixtures/backup-catalog-kit.ts';
import { mixedData } from '../../test/fixtures/backup-seal.ts';
import { encodeManifest, type Manifest, manifestKey, newBackupId } from '../manifest.ts';
import { MasterKey } from '../pipeline/keys.ts';
import { writeSealedBackup } from '../pipeline/writer.ts';
import { DirStore } from '../store/dir.ts';
import { type RestoreBackupOptions, restoreBackup } from './restore.ts';

let root: string;
let store: DirStore;
const master = new MasterKey(randomBytes(32), 'unit key');
const data = { full: mixedData(3 << 20, 1), incr: mixedData(1 << 20, 2) };
let full: Manifest;
let incr: Manifest;
let tools: { mbstream: string; mariadbBackup: string; log: string; failing: string };

async function seal(type: 'full' | 'incremental', plain: Buffer, h: number, parent?: Manifest): Promise<Manifest> {
  const startedAt = new Date(Date.UTC(2026, 11, 6, h));
  const id = newBackupId('unit', type, startedAt, randomBytes(3).toString('hex'));
  const { encryption, pieces } = await writeSealedBackup({
    store,
    master,
    backupId: id,
    source: Readable.from([plain]),
    blockSize: 1 << 20,
    pieceSize: (1 << 20) + 4096,
  });
  const m = makeManifest(type, startedAt, {
    id,
    job: 'unit',
    parent: parent?.id ?? null,
    chain: parent?.chain ?? id,
    lsn: parent === undefined ? { from: 0n, to: 100n } : { from: 100n, to: 200n },
    pieces,
    encryption: { ...encryption },
  });
  await store.putIfAbsent(manifestKey(id), encodeManifest(m));
  return m;
}

function script(name: string, body: string): string {
  const f = join(root, name);
  writeFileSync(f, `#!/bin/sh\n${body}\n`);
  chmodSync(f, 0o755);
  return f;
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'tidemark-restore-unit-'));
  store = await DirStore.open(join(root, 'store'));
  const log = join(root, 'prepare.log');
  tools = {
    log,
    mbstream: script('mbstream', 'cat > "$3/stream.bin"'),
    mariadbBackup: script('mariadb-backup', `[ "$1" = --version ] || echo "$@" >> '${log}'`),
    failing: script('mbstream-bad', 'cat > /dev/null; echo "mbstream: boom at chunk 7" >&2; exit 3'),
  };
  full = await seal('full', data.full, 1);
  incr = await seal('incremental', data.incr, 2, full);
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

function opts(into: string, over: Partial<RestoreBackupOptions> = {}): RestoreBackupOptions {
  return {
    store,
    master,
    id: incr.id,
    into,
    mbstream: tools.mbstream,
    mariadbBackup: tools.mariadbBackup,
    onProgress: () => undefined,
    ...over,
  };
}

async function refused(p: Promise<unknown>): Promise<TidemarkError> {
  const err = await p.then(
    () => new Error('not refused'),
    (e: unknown) => e,
  );
  if (!(err instanceof TidemarkError)) throw err;
  return err;
}

const leftovers = (): string[] => readdirSync(root).filter((f) => f.includes('.restore-'));

describe('restoreBackup', () => {
  it('extracts each backup from its verified plaintext, prepares the full then the incremental', async () => {
    rmSync(tools.log, { force: true });
    const into = join(root, 'ok');
    let workDir = '';
    const lines: string[] = [];
    const r = await restoreBackup(
      opts(into, {
        onLine: (l) => {
          lines.push(l);
          if (l.startsWith('applying')) workDir = leftovers()[0] ?? '';
        },
      }),
    );
    expect(r.chain).toEqual([full.id, incr.id]);
    expect(r.plaintextBytes).toBe(data.full.length + data.incr.length);
    expect(readFileSync(join(into, 'stream.bin')).equals(data.full)).toBe(true);
    expect(workDir).not.toBe('');
    const calls = readFileSync(tools.log, 'utf8').trim().split('\n');
    expect(calls).toEqual([
      `--no-defaults --prepare --target-dir=${into}`,
      `--no-defaults --prepare --target-dir=${into} --incremental-dir=${join(root, workDir, '1-incremental')}`,
    ]);
    expect(leftovers()).toEqual([]);
    expect(lines.at(-1)).toContain(`done: ${into} is a prepared datadir as of ${incr.id}`);
  });

  it('a flipped byte in the last piece: refused naming it, the target and the work dir removed', async () => {
    const last = incr.pieces.at(-1) as Manifest['pieces'][number];
    const file = join(root, 'store', last.key);
    const original = readFileSync(file);
    const bad = Buffer.from(original);
    bad[bad.length - 20] = (bad[bad.length - 20] as number) ^ 0x80;
    writeFileSync(file, bad);
    try {
      const into = join(root, 'tampered');
      const err = await refused(restoreBackup(opts(into)));
      expect(err.code).toBe('BACKUP_INTEGRITY');
      expect(err.message).toContain(`piece '${last.key}' chunk `);
      expect(existsSync(into)).toBe(false);
      expect(leftovers()).toEqual([]);
    } finally {
      writeFileSync(file, original);
    }
  });

  it('refuses a non-empty target and leaves it alone; empties an existing empty one on failure', async () => {
    const busy = join(root, 'busy');
    mkdirSync(busy);
    writeFileSync(join(busy, 'ibdata1'), 'mine');
    const err = await refused(restoreBackup(opts(busy)));
    expect(err.code).toBe('BACKUP_RESTORE_TARGET');
    expect(err.message).toContain('ibdata1');
    expect(readFileSync(join(busy, 'ibdata1'), 'utf8')).toBe('mine');

    const empty = join(root, 'empty');
    mkdirSync(empty);
    const tool = await refused(restoreBackup(opts(empty, { mbstream: tools.failing })));
    expect(tool.code).toBe('BACKUP_RESTORE_TOOL');
    expect(tool.message).toContain('mbstream: boom at chunk 7');
    expect(readdirSync(empty)).toEqual([]);
  });

  it('an unknown id, a parent without manifest, a missing tool: refused before anything is written', async () => {
    const into = join(root, 'never');
    expect((await refused(restoreBackup(opts(into, { id: `${incr.id}x` })))).code).toBe('BACKUP_NOT_FOUND');
    const orphan = makeManifest('incremental', new Date(Date.UTC(2026, 11, 6, 3)), {
      job: 'unit',
      parent: newBackupId('unit', 'full', new Date(Date.UTC(2026, 11, 6, 0)), 'ffffff'),
      chain: full.id,
    });
    await store.putIfAbsent(manifestKey(orphan.id), encodeManifest(orphan));
    const broken = await refused(restoreBackup(opts(into, { id: orphan.id })));
    expect(broken.code).toBe('BACKUP_CHAIN_BROKEN');
    expect(broken.message).toContain(`its parent '${orphan.parent}' has no manifest`);
    const missing = await refused(restoreBackup(opts(into, { mbstream: join(root, 'no-such-mbstream') })));
    expect(missing.code).toBe('BACKUP_RESTORE_TOOL');
    expect(existsSync(into)).toBe(false);
  });
});

/**
 * The runner with real child processes (sh, cat) streaming synthetic mbstream bytes into a directory store: a full
 * then an incremental are sealed with their manifests (the incremental asked for --incremental-lsn = the full's
 * to_lsn and read back byte for byte); a stream whose from_lsn is not the expected one, a command that fails
 * mid-stream and one that never starts leave no manifest; the password reaches the command only in its option
 * file.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileChunks } from '../../test/fixtures/mbstream-kit.ts';
import { Catalog } from '../catalog.ts';
import { backupSchema, type StreamConfig } from '../config.ts';
import { manifestKey } from '../manifest.ts';
import { parseMasterKey } from '../pipeline/keys.ts';
import { readSealedBackup } from '../pipeline/reader.ts';
import { DirStore } from '../store/dir.ts';
import { runBackup } from './runner.ts';

let dir: string;
let store: DirStore;
let catalog: Catalog;
const master = parseMasterKey(Buffer.from(randomBytes(32).toString('hex')), 'test');

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tidemark-runner-'));
  store = await DirStore.open(join(dir, 'store'));
  catalog = new Catalog(':memory:', store.name);
});
afterEach(async () => {
  catalog.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A stream like mariadb-backup's: a data file, then the checkpoints and binlog info. */
function streamFile(name: string, type: string, from: bigint, to: bigint, data: Buffer): string {
  const cp = `backup_type = ${type}\nfrom_lsn = ${from}\nto_lsn = ${to}\nlast_lsn = ${to}\n`;
  const bytes = Buffer.concat([
    fileChunks('bk/t.ibd', data, 1 << 20),
    fileChunks('xtrabackup_binlog_info', Buffer.from('mysql-bin.000003\t4711\t0-1-42\n')),
    fileChunks('xtrabackup_checkpoints', Buffer.from(cp)),
  ]);
  const f = join(dir, name);
  writeFileSync(f, bytes);
  return f;
}

function stream(command: string[], optionFile: 'extra' | 'none' = 'none'): StreamConfig {
  const b = backupSchema.parse({
    stores: [{ name: 'd', kind: 'dir', path: '/x' }],
    encryption: { key_env: 'K' },
    stream: { command, option_file: optionFile, scratch_dir: join(dir, 'scratch') },
  });
  return b.stream;
}

/** `cat FILE` ignoring the mariadb-backup flags the runner appends. */
const cat = (f: string): string[] => ['sh', '-c', `cat ${f}`, 'sh'];

const base = () => ({ job: 'nightly', store, catalog, master, account: { user: 'bk', password: 's3cret-pw' } });

async function readBack(id: string): Promise<Buffer> {
  const m = catalog.show(id).manifest;
  const parts: Buffer[] = [];
  const enc = m.encryption as NonNullable<typeof m.encryption>;
  for await (const b of readSealedBackup({
    store,
    backupId: id,
    master,
    encryption: enc as never,
    pieces: m.pieces.map((p) => ({ ...p })),
  }))
    parts.push(b as Buffer);
  return Buffer.concat(parts);
}

describe('runBackup', () => {
  it('seals a full, then an incremental from its to_lsn, each readable back byte for byte', async () => {
    const fullFile = streamFile('full.xb', 'full-backuped', 0n, 5000n, randomBytes(3 << 20));
    const full = await runBackup({
      ...base(),
      type: 'full',
      stream: stream(cat(fullFile)),
      pipeline: { blockSize: 1 << 20, pieceSize: 2 << 20 },
    });
    expect(full.manifest.parent).toBeNull();
    expect(full.manifest.lsn).toEqual({ from: 0n, to: 5000n });
    expect(full.manifest.binlog).toEqual({ file: 'mysql-bin.000003', position: 4711n });
    expect(full.manifest.gtid).toBe('0-1-42');
    expect(full.manifest.pieces.length).toBeGreaterThan(1);
    expect((await readBack(full.manifest.id)).equals(readFileSync(fullFile))).toBe(true);

    const incFile = streamFile('inc.xb', 'incremental', 5000n, 6000n, randomBytes(100_000));
    const argsFile = join(dir, 'args');
    const inc = await runBackup({
      ...base(),
      type: 'incremental',
      stream: stream(['sh', '-c', `echo "$@" > ${argsFile}; cat ${incFile}`, 'sh']),
    });
    expect(readFileSync(argsFile, 'utf8')).toContain('--incremental-lsn=5000');
    expect(inc.manifest.parent).toBe(full.manifest.id);
    expect(inc.manifest.chain).toBe(full.manifest.id);
    expect((await readBack(inc.manifest.id)).equals(readFileSync(incFile))).toBe(true);
    // the store holds both manifests (a fresh catalog rebuilt from it sees them)
    const fresh = new Catalog(':memory:', store.name);
    await fresh.rebuild(store);
    expect(fresh.list().map((b) => b.id)).toEqual([full.manifest.id, inc.manifest.id]);
    fresh.close();
  });

  it('takes a full when an incremental is asked for and there is no full yet', async () => {
    const f = streamFile('full.xb', 'full-backuped', 0n, 10n, randomBytes(1000));
    const r = await runBackup({ ...base(), type: 'incremental', stream: stream(cat(f)) });
    expect(r.promoted).toBe(true);
    expect(r.manifest.type).toBe('full');
  });

  it('does not seal a stream whose from_lsn is not the expected one', async () => {
    const f = streamFile('full.xb', 'full-backuped', 0n, 5000n, randomBytes(1000));
    await runBackup({ ...base(), type: 'full', stream: stream(cat(f)) });
    const wrong = streamFile('inc.xb', 'incremental', 4000n, 6000n, randomBytes(1000));
    await expect(runBackup({ ...base(), type: 'differential', stream: stream(cat(wrong)) })).rejects.toMatchObject({
      code: 'BACKUP_LSN_MISMATCH',
    });
    expect(await manifests()).toHaveLength(1);
  });

  it('a command failing mid-stream: BACKUP_STREAM with its stderr and exit status, no manifest', async () => {
    const f = streamFile('full.xb', 'full-backuped', 0n, 5000n, randomBytes(2 << 20));
    const cmd = ['sh', '-c', `head -c 1500000 ${f}; echo 'mariadb-backup: disk on fire' >&2; exit 3`];
    const err = await runBackup({ ...base(), type: 'full', stream: stream(cmd), pipeline: { blockSize: 1 << 20 } })
      .then(() => null)
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'BACKUP_STREAM' });
    expect(String((err as Error).message)).toMatch(/status 3.*disk on fire/);
    expect(await manifests()).toHaveLength(0);
    // the scratch directory (option file, --target-dir) is gone
    expect(() => readFileSync(join(dir, 'scratch'))).toThrow();
  });

  it('a command that cannot start is BACKUP_STREAM naming it', async () => {
    await expect(
      runBackup({ ...base(), type: 'full', stream: stream(['/nonexistent/mariadb-backup']) }),
    ).rejects.toMatchObject({ code: 'BACKUP_STREAM', message: expect.stringContaining('could not start (ENOENT)') });
  });

  it('passes the account in a mode-600 option file, never on the command line', async () => {
    const f = streamFile('full.xb', 'full-backuped', 0n, 10n, randomBytes(1000));
    const seen = join(dir, 'seen');
    const script = `for a in "$@"; do case "$a" in --defaults-extra-file=*) cp "\${a#*=}" ${seen}.cnf; stat -c %a "\${a#*=}" > ${seen}.mode;; esac; done; echo "$@" > ${seen}.args; cat ${f}`;
    await runBackup({ ...base(), type: 'full', stream: stream(['sh', '-c', script, 'sh'], 'extra') });
    expect(readFileSync(`${seen}.args`, 'utf8')).not.toContain('s3cret-pw');
    expect(readFileSync(`${seen}.args`, 'utf8')).toMatch(/^--defaults-extra-file=\S+ --backup --stream=mbstream/);
    expect(readFileSync(`${seen}.cnf`, 'utf8')).toBe('[mariadb-backup]\nuser=bk\npassword=s3cret-pw\n');
    expect(readFileSync(`${seen}.mode`, 'utf8').trim()).toBe('600');
  });
});

async function manifests(): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list('')) if (o.key.endsWith('/manifest.json')) out.push(o.key);
  expect(out.every((k) => k === manifestKey(k.slice(0, k.indexOf('/'))))).toBe(true);
  return out;
}

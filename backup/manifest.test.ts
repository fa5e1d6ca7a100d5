import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../core/errors.ts';
import { makeManifest } from '../test/fixtures/backup-catalog-kit.ts';
import {
  decodeManifest,
  decodeStar,
  encodeManifest,
  encodeStar,
  MANIFEST_VERSION,
  newBackupId,
  parseBackupId,
} from './manifest.ts';

const t0 = new Date('2026-12-06T01:02:03.456Z');

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return err instanceof TidemarkError ? `${err.code}: ${err.message}` : String(err);
  }
  return 'no error';
}

describe('backup ids', () => {
  it('encode the UTC start (to the second), job and type, and parse back', () => {
    const id = newBackupId('nightly-db1', 'incremental', t0, '0a1b2c');
    expect(id).toBe('20261206T010203Z-nightly-db1-incremental-0a1b2c');
    expect(parseBackupId(id)).toEqual({
      startedAt: new Date('2026-12-06T01:02:03Z'),
      job: 'nightly-db1',
      type: 'incremental',
    });
    expect(parseBackupId('lost+found')).toBeNull();
    expect(code(() => newBackupId('bad job', 'full', t0, '000000'))).toContain("job name 'bad job'");
  });
});

describe('manifest', () => {
  it('round-trips every field, bigint beyond 2^53 included', () => {
    const full = makeManifest('full', t0);
    const incr = makeManifest('incremental', new Date(t0.getTime() + 3600_000), {
      parent: full.id,
      chain: full.id,
      lsn: { from: 9007199254740993n, to: 9007199254741993n },
      binlog: { file: 'mysql-bin.000042', position: 2n ** 40n },
    });
    const back = decodeManifest(encodeManifest(incr));
    expect(back).toEqual(incr);
    const log = makeManifest('log', t0);
    expect(decodeManifest(encodeManifest(log))).toEqual(log);
    const json = JSON.parse(encodeManifest(incr).toString());
    expect(json).toMatchObject({
      format: 'tidemark-backup-manifest',
      version: MANIFEST_VERSION,
      lsn: { from: '9007199254740993' },
    });
  });

  it('refuses to write a manifest that breaks the chain rules, naming the rule', () => {
    const full = makeManifest('full', t0);
    expect(code(() => encodeManifest({ ...makeManifest('incremental', t0), parent: null }))).toContain(
      'needs a parent',
    );
    expect(code(() => encodeManifest({ ...full, parent: full.id }))).toContain('has no parent');
    expect(code(() => encodeManifest({ ...full, chain: makeManifest('full', t0).id }))).toContain('chain = id');
    expect(code(() => encodeManifest({ ...full, lsn: null }))).toContain('LSN range');
    expect(code(() => encodeManifest({ ...full, endedAt: new Date(t0.getTime() - 1) }))).toContain('endedAt is before');
    expect(
      code(() =>
        encodeManifest({ ...full, pieces: [{ key: 'elsewhere/piece', size: 1n, sha256: 'b'.repeat(64), chunks: 1 }] }),
      ),
    ).toContain("piece key 'elsewhere/piece'");
    expect(code(() => encodeManifest({ ...full, type: 'logical' }))).toContain('does not match');
  });

  it('decodes with errors naming the key, and refuses a newer version asking for an upgrade', () => {
    expect(code(() => decodeManifest('{', 'x/manifest.json'))).toBe(
      "BACKUP_MANIFEST: backup manifest 'x/manifest.json' is not JSON",
    );
    const newer = { ...JSON.parse(encodeManifest(makeManifest('full', t0)).toString()), version: MANIFEST_VERSION + 1 };
    expect(code(() => decodeManifest(JSON.stringify(newer), 'k'))).toContain('upgrade tidemark');
    const noSize = JSON.parse(encodeManifest(makeManifest('full', t0)).toString());
    noSize.pieces[0].size = -1;
    expect(code(() => decodeManifest(JSON.stringify(noSize), 'k'))).toContain("'pieces.0.size'");
  });

  it('keeps the encryption header opaque (extra fields survive)', () => {
    const m = makeManifest('full', t0, {
      encryption: { algorithm: 'aes-256-gcm', wrappedKey: 'abc', keyId: 'k1', chunkBytes: 4194304 },
    });
    expect(decodeManifest(encodeManifest(m)).encryption).toEqual({
      algorithm: 'aes-256-gcm',
      wrappedKey: 'abc',
      keyId: 'k1',
      chunkBytes: 4194304,
    });
  });
});

describe('star', () => {
  it('round-trips and refuses an unknown kind', () => {
    const s = { id: makeManifest('full', t0).id, kind: 'pitr' as const, note: 'year-end 2026', starredAt: t0 };
    expect(decodeStar(encodeStar(s))).toEqual(s);
    expect(
      code(() => decodeStar(JSON.stringify({ ...JSON.parse(encodeStar(s).toString()), kind: 'forever' }), 'k')),
    ).toContain("'kind'");
  });
});

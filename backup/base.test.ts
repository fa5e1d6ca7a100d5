import { describe, expect, it } from 'vitest';
import { makeManifest } from '../test/fixtures/backup-catalog-kit.ts';
import { parseCheckpoints } from './backup-info.ts';
import { chooseBase, checkStreamStart } from './base.ts';

const day = (n: number): Date => new Date(Date.UTC(2026, 10, 1 + n, 2));

describe('chooseBase', () => {
  const f1 = makeManifest('full', day(0), { lsn: { from: 0n, to: 100n } });
  const i1 = makeManifest('incremental', day(1), { parent: f1.id, chain: f1.id, lsn: { from: 100n, to: 150n } });
  const f2 = makeManifest('full', day(2), { lsn: { from: 0n, to: 300n } });
  const i2 = makeManifest('incremental', day(3), { parent: f2.id, chain: f2.id, lsn: { from: 300n, to: 340n } });
  const d2 = makeManifest('differential', day(4), { parent: f2.id, chain: f2.id, lsn: { from: 300n, to: 390n } });
  const logical = makeManifest('logical', day(5));

  it('incremental: the newest backup of the newest chain; differential: that chain full', () => {
    const all = [f1, i1, f2, i2, d2, logical];
    expect(chooseBase(all, 'incremental')).toEqual({ parent: d2, chain: f2.id, fromLsn: 390n });
    expect(chooseBase(all, 'differential')).toEqual({ parent: f2, chain: f2.id, fromLsn: 300n });
    expect(chooseBase([f1, i1], 'incremental')?.fromLsn).toBe(150n);
    expect(chooseBase([logical], 'incremental')).toBeNull();
  });
});

describe('checkStreamStart', () => {
  const cp = (type: string, from: bigint, to: bigint) =>
    parseCheckpoints(`backup_type = ${type}\nfrom_lsn = ${from}\nto_lsn = ${to}\nlast_lsn = ${to}\n`);

  it('accepts a stream that starts where expected and names what differs otherwise', () => {
    expect(() => checkStreamStart(cp('incremental', 390n, 420n), 'incremental', 390n)).not.toThrow();
    expect(() => checkStreamStart(cp('full-backuped', 0n, 420n), 'full', 0n)).not.toThrow();
    expect(() => checkStreamStart(cp('incremental', 391n, 420n), 'incremental', 390n)).toThrow(
      'starts at from_lsn 391, expected 390',
    );
    expect(() => checkStreamStart(cp('full-backuped', 0n, 420n), 'differential', 300n)).toThrow(
      "backup_type 'full-backuped'",
    );
    expect(() => checkStreamStart(null, 'full', 0n)).toThrow('no xtrabackup_checkpoints');
  });
});

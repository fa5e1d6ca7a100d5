import { describe, expect, it } from 'vitest';
import { makeManifest } from '../../test/fixtures/backup-catalog-kit.ts';
import { refusal } from '../../test/fixtures/refusal.ts';
import type { Manifest } from '../manifest.ts';
import { planRestore } from './plan.ts';

const t = (h: number): Date => new Date(Date.UTC(2026, 11, 6, h));

/** full (0→1000) → incr (1000→2000) → incr (2000→3000), and a differential (1000→2500) on the full. */
function chain(): { full: Manifest; i1: Manifest; i2: Manifest; diff: Manifest } {
  const full = makeManifest('full', t(1), { lsn: { from: 0n, to: 1000n } });
  const on = (type: 'incremental' | 'differential', h: number, parent: Manifest, from: bigint, to: bigint) =>
    makeManifest(type, t(h), { parent: parent.id, chain: full.id, lsn: { from, to } });
  const i1 = on('incremental', 2, full, 1000n, 2000n);
  return { full, i1, i2: on('incremental', 3, i1, 2000n, 3000n), diff: on('differential', 4, full, 1000n, 2500n) };
}

describe('planRestore', () => {
  it('full first, then each incremental in order; a differential needs only the full', () => {
    const { full, i1, i2, diff } = chain();
    const p = planRestore([full, i1, i2]);
    expect(p.steps.map((s) => [s.role, s.manifest.id])).toEqual([
      ['full', full.id],
      ['incremental', i1.id],
      ['incremental', i2.id],
    ]);
    expect(p.target.id).toBe(i2.id);
    expect(p.pieces).toBe(3);
    expect(p.storedBytes).toBe(3n * 1234n);
    expect(planRestore([full, diff]).steps.map((s) => s.role)).toEqual(['full', 'differential']);
    expect(planRestore([full]).steps.map((s) => s.role)).toEqual(['full']);
  });

  it('refuses a chain whose LSNs do not meet, naming both backups', () => {
    const { full, i1 } = chain();
    const gap = makeManifest('incremental', t(5), { parent: i1.id, chain: full.id, lsn: { from: 1999n, to: 3000n } });
    const e = refusal(() => planRestore([full, i1, gap]));
    expect(e.code).toBe('BACKUP_CHAIN_BROKEN');
    expect(e.message).toContain(`'${gap.id}' starts at LSN 1999, but '${i1.id}' ends at LSN 2000`);
  });

  it('refuses a chain out of order, of another chain, a differential not on the full, or unsealed', () => {
    const { full, i1, i2, diff } = chain();
    expect(refusal(() => planRestore([full, i2])).message).toContain(`names parent '${i1.id}'`);
    expect(refusal(() => planRestore([i1, i2])).message).toContain('not a full one');
    const other = makeManifest('incremental', t(6), { parent: full.id, chain: i1.id, lsn: { from: 1000n, to: 1100n } });
    expect(refusal(() => planRestore([full, other])).message).toContain(`belongs to chain '${i1.id}'`);
    const diffOnIncr = { ...diff, parent: i1.id, lsn: { from: 2000n, to: 2500n } };
    expect(refusal(() => planRestore([full, i1, diffOnIncr])).message).toContain('must be based on the full');
    expect(refusal(() => planRestore([{ ...full, encryption: null }])).message).toContain('no encryption header');
  });

  it('refuses log and logical backups as NOT_SUPPORTED (replay and logical restore are not done)', () => {
    const log = makeManifest('log', t(1));
    expect(refusal(() => planRestore([log])).code).toBe('NOT_SUPPORTED');
    expect(refusal(() => planRestore([log])).message).toContain('--to-gtid');
    expect(refusal(() => planRestore([makeManifest('logical', t(1))])).code).toBe('NOT_SUPPORTED');
  });
});

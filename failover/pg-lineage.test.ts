import { describe, expect, it } from 'vitest';
import type { Lineage } from './lineage.ts';
import { parseLineageRow } from './lineage.ts';
import { PG_LINEAGE_CREATE, PG_LINEAGE_SELECT, PG_LINEAGE_UPSERT, pgLineageParams } from './pg-lineage.ts';

const lineage: Lineage = {
  source: "pg'main",
  site: 'dr1',
  promotedAt: '2026-12-06T20:00:00.000Z',
  journalId: 'new-id',
  branchOf: 'old-id',
  branchLsn: 2n ** 63n + 3n,
  branchSeq: 2n ** 62n,
  branchTx: '745:0/3000A28',
  branchEpoch: 2,
  markerLsn: 2n ** 63n + 4n,
  position: { kind: 'sequence', engine: 'postgres', value: 2n ** 40n },
};

describe('the lineage row on PostgreSQL', () => {
  it('upserts every column as a parameter, without DELETE, unsigned 64-bit numbers as exact text', () => {
    expect(PG_LINEAGE_UPSERT).toMatch(/^INSERT INTO tidemark\.failover_lineage \(source, site, promoted_at, /);
    expect(PG_LINEAGE_UPSERT).toMatch(/VALUES \(\$1, \$2, .*\$11\) ON CONFLICT \(source\) DO UPDATE SET site = /);
    expect(PG_LINEAGE_UPSERT).toMatch(/, position = EXCLUDED\.position$/);
    expect(PG_LINEAGE_UPSERT).not.toMatch(/DELETE|REPLACE/);
    const p = pgLineageParams(lineage);
    expect(p).toHaveLength(11);
    expect(p.slice(0, 2)).toEqual(["pg'main", 'dr1']);
    expect(p.slice(5, 10)).toEqual([`${2n ** 63n + 3n}`, `${2n ** 62n}`, '745:0/3000A28', '2', `${2n ** 63n + 4n}`]);
    expect(JSON.parse(p[10]!)).toMatchObject({ kind: 'sequence', engine: 'postgres' });
    // Room for the unsigned range: numeric(20), not bigint.
    expect(PG_LINEAGE_CREATE[1]).toMatch(/branch_lsn numeric\(20\) NOT NULL/);
    expect(PG_LINEAGE_SELECT).toMatch(/branch_lsn::text AS branch_lsn/);
  });

  it('reads back what it wrote (the server returns the numbers as text, the epoch as a number)', () => {
    const p = pgLineageParams(lineage);
    const names = ['source', 'site', 'promoted_at', 'journal_id', 'branch_of', 'branch_lsn', 'branch_seq'];
    const row: Record<string, unknown> = Object.fromEntries(names.map((n, i) => [n, p[i]]));
    Object.assign(row, { branch_tx: p[7], branch_epoch: 2, marker_lsn: p[9], position: p[10] });
    expect(parseLineageRow(row, 'test')).toEqual(lineage);
  });
});

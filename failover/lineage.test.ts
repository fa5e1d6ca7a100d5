import { describe, expect, it } from 'vitest';
import { type Lineage, parseLineageRow, upsertLineageSql } from './lineage.ts';

const lineage: Lineage = {
  source: "sh'op",
  site: 'dr1',
  promotedAt: '2026-11-22T10:00:00.000Z',
  journalId: 'new-id',
  branchOf: 'old-id',
  branchLsn: 2n ** 60n + 3n,
  branchSeq: 2n ** 62n,
  branchTx: '0-3631-95',
  branchEpoch: 2,
  markerLsn: 2n ** 60n + 4n,
  position: { kind: 'mysql', binlog: { file: 'mysql-bin.000007', offset: 2n ** 40n }, gtid: '0-3632-38' },
};

describe('lineage row', () => {
  it('writes every field, quoted, with 64-bit numbers exact', () => {
    const sql = upsertLineageSql(lineage);
    // No REPLACE: it needs DELETE, which the failover account's documented grants lack (issue #17).
    expect(sql).toMatch(/^INSERT INTO `tidemark`\.`failover_lineage` \(source, site,/);
    expect(sql).toMatch(/ ON DUPLICATE KEY UPDATE site = VALUES\(site\), .*position = VALUES\(position\)$/);
    expect(sql).not.toMatch(/REPLACE/);
    expect(sql).toContain("'sh\\'op'");
    expect(sql).toContain(`, ${2n ** 60n + 3n}, ${2n ** 62n}, '0-3631-95', 2, ${2n ** 60n + 4n}, `);
    expect(sql).toContain('"offset":"1099511627776"');
  });

  it('reads back what the server returns (numbers as strings), and refuses a damaged row naming the column', () => {
    const row = {
      source: "sh'op",
      site: 'dr1',
      promoted_at: lineage.promotedAt,
      journal_id: 'new-id',
      branch_of: 'old-id',
      branch_lsn: String(lineage.branchLsn),
      branch_seq: String(lineage.branchSeq),
      branch_tx: '0-3631-95',
      branch_epoch: 2,
      marker_lsn: String(lineage.markerLsn),
      position: JSON.stringify({
        kind: 'mysql',
        file: 'mysql-bin.000007',
        offset: String(2n ** 40n),
        gtid: '0-3632-38',
      }),
    };
    expect(parseLineageRow(row, 'here')).toEqual(lineage);
    expect(() => parseLineageRow({ ...row, branch_lsn: '-1' }, 'here')).toThrow(/here: branch_lsn is not a number/);
    expect(() => parseLineageRow({ ...row, position: '{' }, 'here')).toThrow(/here: position is not JSON/);
  });
});

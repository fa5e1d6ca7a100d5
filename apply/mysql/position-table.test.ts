import { describe, expect, it } from 'vitest';
import {
  claimSql,
  clearDdlPendingSql,
  createTableSql,
  parsePositionRow,
  selectPositionSql,
  setDdlPendingSql,
  setHoldSql,
  setPointSql,
  upsertPositionSql,
} from './position-table.ts';

describe('position table SQL', () => {
  it('creates an InnoDB table keyed by source', () => {
    const sql = createTableSql();
    expect(sql).toContain('CREATE TABLE IF NOT EXISTS `tidemark`.`applied_position`');
    expect(sql).toContain('PRIMARY KEY (source)');
    expect(sql).toContain('ddl_pending_seq BIGINT UNSIGNED NULL');
    expect(sql).toContain('ENGINE=InnoDB');
  });

  it('upserts the state and clears a pending DDL', () => {
    const sql = upsertPositionSql("o'src", {
      seq: 18446744073709551615n,
      lsn: 42n,
      position: { kind: 'mysql', binlog: { file: 'mysql-bin.000002', offset: 9000000000n }, gtid: '0-1-5' },
      commitTimeUs: 1700000000000000n,
      phase: 'stream',
    });
    expect(sql).toContain(
      "VALUES ('o\\'src', 18446744073709551615, 42, 'mysql-bin.000002', 9000000000, '0-1-5', 1700000000000000, 'stream', CURRENT_TIMESTAMP(6), NULL)",
    );
    expect(sql).toContain('ddl_pending_seq = NULL');
    const noPos = upsertPositionSql('s', { seq: 1n, lsn: 0n, position: null, commitTimeUs: null, phase: null });
    expect(noPos).toContain("VALUES ('s', 1, 0, NULL, NULL, NULL, NULL, NULL,");
  });

  it('marks a DDL pending without touching the applied seq', () => {
    expect(setDdlPendingSql('s', 7n, 6n)).toBe(
      "UPDATE `tidemark`.`applied_position` SET ddl_pending_seq = 7 WHERE source = 's' AND hold IS NULL AND seq <=> 6",
    );
    expect(setDdlPendingSql('s', 7n, null)).toContain('seq <=> NULL');
    expect(selectPositionSql('s')).toContain("WHERE source = 's'");
    expect(clearDdlPendingSql('s', 7n)).toBe(
      "UPDATE `tidemark`.`applied_position` SET ddl_pending_seq = NULL WHERE source = 's' AND ddl_pending_seq = 7",
    );
  });

  it('claims the row only when not held and at the expected seq', () => {
    expect(claimSql('s', 5n)).toBe(
      "UPDATE `tidemark`.`applied_position` SET applied_at = applied_at WHERE source = 's' AND hold IS NULL AND seq <=> 5",
    );
    expect(claimSql('s', null)).toContain('seq <=> NULL');
    expect(setHoldSql('s', 'x')).toBe("UPDATE `tidemark`.`applied_position` SET hold = 'x' WHERE source = 's'");
    expect(setHoldSql('s', null)).toContain('SET hold = NULL');
    const point = setPointSql('s', { seq: 9n, lsn: 3n, position: null, commitTimeUs: 5n, phase: 'stream' }, 'h');
    expect(point).toContain('seq = 9, journal_lsn = 3, binlog_file = NULL');
    expect(point).toContain("hold = 'h' WHERE source = 's'");
    expect(selectPositionSql('s', true)).toMatch(/ FOR UPDATE$/);
  });

  it('parses rows', () => {
    expect(parsePositionRow(undefined)).toEqual({ state: null, ddlPendingSeq: null, hold: null });
    expect(parsePositionRow({ seq: null, lsn: null, ddl_pending_seq: '5' })).toEqual({
      state: null,
      ddlPendingSeq: 5n,
      hold: null,
    });
    const p = parsePositionRow({
      seq: '10',
      lsn: '20',
      binlog_file: 'mysql-bin.000001',
      binlog_offset: '4',
      gtid: '0-1-1',
      commit_time_us: '123',
      phase: 'baseline',
      ddl_pending_seq: null,
      hold: 'rewound to seq 10',
    });
    expect(p).toEqual({
      state: {
        seq: 10n,
        lsn: 20n,
        position: { kind: 'mysql', binlog: { file: 'mysql-bin.000001', offset: 4n }, gtid: '0-1-1' },
        commitTimeUs: 123n,
        phase: 'baseline',
      },
      ddlPendingSeq: null,
      hold: 'rewound to seq 10',
    });
    expect(() => parsePositionRow({ seq: '1', lsn: null })).toThrow(/journal_lsn is NULL/);
    expect(() => parsePositionRow({ seq: 'x', lsn: '1' })).toThrow(/not an integer/);
  });
});

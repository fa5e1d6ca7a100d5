import { describe, expect, it } from 'vitest';
import { sequencePosition } from '../../record/position.ts';
import { originGrantSql, originName, timestampText, xactSetupSql } from './origin.ts';

describe('PostgreSQL replication origin', () => {
  it('is named after the source and the target database, with the prefix capture skips by default', () => {
    expect(originName('pg-main', 'shop')).toBe('tidemark_pg-main/shop');
  });

  it('writes a commit time with every microsecond', () => {
    expect(timestampText(1_765_048_500_123_456n)).toBe('2025-12-06 19:15:00.123456+00');
    expect(timestampText(1_000_000n)).toBe('1970-01-01 00:00:01.000000+00');
  });

  it('stamps a transaction with the source commit LSN, or the journal LSN for a MySQL source', () => {
    const st = {
      seq: 9n,
      lsn: 77n,
      position: sequencePosition('postgres', 0x16b374d848n),
      commitTimeUs: 1_000_000n,
      phase: 'stream' as const,
    };
    expect(xactSetupSql(st)).toBe(
      "SELECT pg_replication_origin_xact_setup('16/B374D848'::pg_lsn, '1970-01-01 00:00:01.000000+00'::timestamptz)",
    );
    const mysql = {
      ...st,
      position: { kind: 'mysql' as const, binlog: { file: 'b.000001', offset: 4n } },
      commitTimeUs: null,
    };
    expect(xactSetupSql(mysql)).toBe("SELECT pg_replication_origin_xact_setup('0/4D'::pg_lsn, now())");
  });

  it('names the grants a DBA runs', () => {
    expect(originGrantSql('tidemark_apply')).toBe(
      'GRANT EXECUTE ON FUNCTION pg_catalog.pg_replication_origin_create(text), pg_catalog.pg_replication_origin_session_setup(text), pg_catalog.pg_replication_origin_xact_setup(pg_lsn, timestamptz) TO tidemark_apply',
    );
  });
});

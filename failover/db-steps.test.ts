import { describe, expect, it } from 'vitest';
import { failoverDbSteps, formatStoredPosition, sourcePositionOfStored, storePromotionPosition } from './db-steps.ts';

describe('failoverDbSteps', () => {
  it('picks the engine of the source and the promoted target (MySQL without kind)', () => {
    expect(failoverDbSteps(undefined, undefined).engine).toBe('mysql');
    expect(failoverDbSteps('mysql', 'mysql').engine).toBe('mysql');
    expect(failoverDbSteps('postgres', 'postgres').engine).toBe('postgres');
  });

  it('refuses a cross-engine replica and an engine without takeover', () => {
    expect(() => failoverDbSteps('mysql', 'postgres')).toThrow(/source.kind mysql, target kind postgres/);
    expect(() => failoverDbSteps('oracle', 'oracle')).toThrow(/not implemented for kind oracle/);
  });
});

describe('promotion positions', () => {
  it('stores a PostgreSQL slot LSN as text and turns it back into the capture start', () => {
    const stored = storePromotionPosition({ engine: 'postgres', lsn: 0x13000a28n, slot: 'tm', publication: 'pub' });
    expect(stored).toEqual({ engine: 'postgres', lsn: String(0x13000a28n), slot: 'tm', publication: 'pub' });
    expect(JSON.parse(JSON.stringify(stored))).toEqual(stored);
    expect(sourcePositionOfStored(stored)).toEqual({ kind: 'sequence', engine: 'postgres', value: 0x13000a28n });
    expect(formatStoredPosition(stored)).toBe('0/13000A28 (slot tm)');
  });

  it('keeps the MySQL form (file, offset, gtid)', () => {
    const stored = storePromotionPosition({ gtid: '0-2-7', file: 'mysql-bin.000002', offset: 1234n });
    expect(stored).toEqual({ gtid: '0-2-7', file: 'mysql-bin.000002', offset: '1234' });
    expect(sourcePositionOfStored(stored)).toMatchObject({
      kind: 'mysql',
      binlog: { file: 'mysql-bin.000002', offset: 1234n },
    });
    expect(formatStoredPosition(stored)).toBe('mysql-bin.000002:1234 (gtid 0-2-7)');
  });
});

import { describe, expect, it } from 'vitest';
import { replicationError, startReplicationSql } from './replication.ts';

describe('startReplicationSql', () => {
  it('asks for pgoutput v1 with messages, from our own position, publications quoted inside one literal', () => {
    expect(
      startReplicationSql({ slot: 'tm_slot', publications: ['pub', 'we\'ird "pub"'], startLsn: 0x16b374d848n }),
    ).toBe(
      `START_REPLICATION SLOT tm_slot LOGICAL 16/B374D848 (proto_version '1', publication_names '"pub","we''ird ""pub"""', messages 'true')`,
    );
  });

  it('refuses a slot name PostgreSQL would refuse, and no publication', () => {
    expect(() => startReplicationSql({ slot: 'Bad-Slot', publications: ['p'], startLsn: 0n })).toThrow(
      /a-z, 0-9 and _/,
    );
    expect(() => startReplicationSql({ slot: 's', publications: [], startLsn: 0n })).toThrow(/publication/);
  });
});

describe('replicationError', () => {
  const dbError = (code: string, message: string, detail?: string) =>
    Object.assign(new Error(message), { code, severity: 'ERROR', ...(detail ? { detail } : {}) });

  it('a slot invalidated by max_slot_wal_keep_size is PG_SLOT_LOST, not retriable, telling to re-baseline', () => {
    const e = replicationError(
      dbError(
        '55000',
        'can no longer get changes from replication slot "tm"',
        'This slot has been invalidated because it exceeded the maximum reserved size.',
      ),
      'tm',
      { host: 'h' },
    );
    expect([e.code, e.retriable]).toEqual(['PG_SLOT_LOST', false]);
    expect(e.message).toContain('re-baseline the targets and create the slot again');
  });

  it('a slot held by another walsender (55006) is retriable: the previous capture may still be ending', () => {
    const e = replicationError(dbError('55006', 'replication slot "tm" is active for PID 7'), 'tm', {});
    expect([e.code, e.retriable]).toEqual(['PG_TRANSIENT', true]);
    expect(e.message).toContain('replication slot tm is in use by another process');
  });

  it('anything else is classified as postgres/errors.ts does', () => {
    expect(replicationError(dbError('55000', 'replication slot "tm" is active for PID 7'), 'tm', {}).code).toBe(
      'PG_SERVER',
    );
    const gone = replicationError(dbError('57P01', 'terminating connection due to administrator command'), 'tm', {});
    expect([gone.code, gone.retriable]).toEqual(['PG_CONNECT', true]);
    expect(replicationError(new Error('Connection terminated unexpectedly'), 'tm', {}).retriable).toBe(true);
  });
});

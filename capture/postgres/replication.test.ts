import { describe, expect, it } from 'vitest';
import { startReplicationSql } from './replication.ts';

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

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import {
  assertPgPrerequisites,
  evaluatePgPrerequisites,
  factsFromRows,
  type PgFactRows,
  type TableName,
} from './prerequisites.ts';

/** Catalog rows recorded from the real PostgreSQL 15 of test/it/pg-stream.it.test.ts (as tidemark_cap). */
const recorded = JSON.parse(readFileSync(join(import.meta.dirname, 'prerequisites.recorded.json'), 'utf8')) as {
  wanted: TableName[];
  rows: PgFactRows;
};
const T = [{ schema: 'app', table: 't' }];

/** The recorded rows with some replaced. */
function rows(over: Partial<PgFactRows> = {}): PgFactRows {
  return { ...recorded.rows, ...over };
}
const setting = (name: string, value: string) =>
  recorded.rows.settings.map((s) => (s.name === name ? { ...s, setting: value } : s));

describe('PostgreSQL prerequisites on recorded catalog rows', () => {
  it('the recorded server is ready for app.t and names the missing table', () => {
    expect(evaluatePgPrerequisites(factsFromRows(recorded.rows, T))).toEqual([]);
    expect(evaluatePgPrerequisites(factsFromRows(recorded.rows, recorded.wanted))).toEqual([
      'table app.missing does not exist (or the role cannot see it): create it or remove it from the captured tables',
    ]);
  });

  it('names wal_level, the slots, the senders and the role, each with the fix', () => {
    const slotsUsed = Number(recorded.rows.slots[0]?.n);
    const facts = factsFromRows(
      rows({
        settings: setting('wal_level', 'replica').map((s) =>
          s.name === 'max_replication_slots' ? { ...s, setting: String(slotsUsed) } : s,
        ),
        slots: [{ n: String(slotsUsed), own: '0' }],
        senders: [{ n: recorded.rows.settings.find((s) => s.name === 'max_wal_senders')?.setting ?? '0' }],
        role: [{ rolname: 'cap"x', rolreplication: 'f', rolsuper: 'f' }],
      }),
      T,
    );
    const out = evaluatePgPrerequisites(facts);
    expect(out).toHaveLength(4);
    expect(out[0]).toBe(
      "wal_level is 'replica', must be 'logical': ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL",
    );
    expect(out[1]).toMatch(/^max_replication_slots is \d+ and \d+ slot\(s\) exist: tidemark needs one more/);
    expect(out[2]).toMatch(/^max_wal_senders is \d+ and \d+ WAL sender\(s\) run: tidemark needs one more/);
    expect(out[3]).toBe('role "cap""x" lacks REPLICATION: ALTER ROLE "cap""x" REPLICATION');
    // tidemark's own slot already exists: no new slot is needed.
    const own = factsFromRows(
      rows({ settings: setting('max_replication_slots', '1'), slots: [{ n: '1', own: '1' }] }),
      T,
    );
    expect(evaluatePgPrerequisites(own)).toEqual([]);
  });

  it('asks for REPLICA IDENTITY FULL per table unless opted out, and refuses keyless tables even then', () => {
    const table = (ident: string, pk: string) => rows({ tables: [{ schema: 'app', table: 't', ident, pk }] });
    const def = factsFromRows(table('d', 't'), T);
    expect(evaluatePgPrerequisites(def)).toEqual([
      'table app.t has REPLICA IDENTITY DEFAULT: tidemark needs FULL for before images (rewind, guarded apply): ' +
        'ALTER TABLE "app"."t" REPLICA IDENTITY FULL; or list "app.t" in identity_full_opt_out to capture it ' +
        'without before images (rewind is then disabled for that table)',
    ]);
    expect(evaluatePgPrerequisites(def, { identityFullOptOut: ['app.t'] })).toEqual([]);
    expect(evaluatePgPrerequisites(factsFromRows(table('i', 'f'), T), { identityFullOptOut: ['app.t'] })).toEqual([]);
    for (const [ident, pk, what] of [
      ['n', 't', 'NOTHING'],
      ['d', 'f', 'DEFAULT and no primary key'],
    ] as const) {
      expect(evaluatePgPrerequisites(factsFromRows(table(ident, pk), T), { identityFullOptOut: ['app.t'] })).toEqual([
        `table app.t has REPLICA IDENTITY ${what}: updates and deletes cannot be captured; ALTER TABLE "app"."t" REPLICA IDENTITY FULL`,
      ]);
    }
  });

  it('assertPgPrerequisites throws one PREREQUISITE error listing every line', () => {
    const facts = factsFromRows(rows({ settings: setting('wal_level', 'minimal') }), recorded.wanted);
    let err: unknown;
    try {
      assertPgPrerequisites(facts, { host: '127.0.0.1', port: 5440 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).code).toBe('PREREQUISITE');
    expect((err as TidemarkError).retriable).toBe(false);
    expect((err as { failures: string[] }).failures).toHaveLength(2);
    expect((err as Error).message).toContain("\n  - wal_level is 'minimal'");
    expect(() => assertPgPrerequisites(factsFromRows(recorded.rows, T), { host: 'h', port: 1 })).not.toThrow();
  });
});

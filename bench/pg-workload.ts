/**
 * Workloads of the PostgreSQL benchmark (bench/postgres.ts), run on the source through the `pg` driver:
 *   - a seeded multi-table OLTP mix on a `shop` schema (1–7 statements per transaction, inserts, updates, deletes,
 *     numeric, timestamptz, jsonb), each worker on its own keys so workers never wait on each other;
 *   - a paced writer: single-row transactions into `bench.lag` at a fixed rate, each stamped with the source's
 *     clock (`at`), which the targets compare with their own insert time (`applied_at`).
 */
import type pg from 'pg';
import { prng } from '../test/fixtures/prng.ts';

/** The shop tables (every one with a primary key: apply/postgres matches rows by it). */
export const PG_SHOP_SCHEMA = `
  CREATE SCHEMA shop;
  CREATE TABLE shop.customers (id bigint PRIMARY KEY, name text NOT NULL, email text, balance numeric(14,2) NOT NULL,
    created timestamptz NOT NULL);
  CREATE TABLE shop.orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL, status text NOT NULL,
    amount numeric(18,4) NOT NULL, meta jsonb, updated timestamp(6) NOT NULL DEFAULT clock_timestamp());
  CREATE TABLE shop.order_items (order_id bigint NOT NULL, line_no smallint NOT NULL, sku text NOT NULL,
    qty int NOT NULL, price numeric(10,2) NOT NULL, PRIMARY KEY (order_id, line_no));
  CREATE TABLE shop.audit_log (id bigint PRIMARY KEY, at timestamp(6) NOT NULL, actor text NOT NULL, note text);`;

const NAMES = ['Ada', 'Grace', 'Linus', 'Zoë', 'Jürgen', '李雷', "O'Brien", 'Ωmega', 'Émile 🚀'];
const STATUSES = ['new', 'paid', 'shipped', 'cancelled'];

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;

/** One worker's keys: ids it created and may update or delete (no two workers touch the same row). */
interface Worker {
  readonly w: number;
  readonly r: () => number;
  next: number;
  readonly orders: number[];
}

async function oltpTransaction(c: pg.Client, k: Worker): Promise<void> {
  const r = k.r;
  const id = () => k.w * 1_000_000_000 + ++k.next;
  const kind = r();
  await c.query('BEGIN');
  if (kind < 0.35 || k.orders.length < 4) {
    const cust = id();
    const order = id();
    await c.query('INSERT INTO shop.customers VALUES ($1, $2, $3, $4, clock_timestamp())', [
      cust,
      pick(r, NAMES),
      r() < 0.2 ? null : `c${cust}@example.com`,
      (r() * 1000).toFixed(2),
    ]);
    await c.query('INSERT INTO shop.orders (id, customer_id, status, amount, meta) VALUES ($1, $2, $3, $4, $5)', [
      order,
      cust,
      pick(r, STATUSES),
      (r() * 10000).toFixed(4),
      r() < 0.3 ? null : JSON.stringify({ w: k.w, tags: ['a', 'ü'], n: cust }),
    ]);
    const lines = 1 + Math.floor(r() * 5);
    for (let i = 1; i <= lines; i++)
      await c.query('INSERT INTO shop.order_items VALUES ($1, $2, $3, $4, $5)', [
        order,
        i,
        `SKU${Math.floor(r() * 99999)}`,
        1 + Math.floor(r() * 9),
        (r() * 100).toFixed(2),
      ]);
    k.orders.push(order);
  } else if (kind < 0.65) {
    const order = pick(r, k.orders);
    await c.query(
      'UPDATE shop.orders SET status = $2, amount = amount + $3, updated = clock_timestamp() WHERE id = $1',
      [order, pick(r, STATUSES), (r() * 10).toFixed(4)],
    );
    await c.query('UPDATE shop.customers SET balance = balance - 1.25 WHERE id = $1::bigint - 1', [order]);
  } else if (kind < 0.8) {
    const order = k.orders.splice(Math.floor(r() * k.orders.length), 1)[0]!;
    await c.query('DELETE FROM shop.order_items WHERE order_id = $1', [order]);
    await c.query('DELETE FROM shop.orders WHERE id = $1', [order]);
  } else {
    const a = id();
    await c.query(
      'INSERT INTO shop.audit_log VALUES ($1, clock_timestamp(), $2, $3), ($1::bigint + 1, clock_timestamp(), $2, NULL)',
      [a, `w${k.w}`, pick(r, NAMES)],
    );
    k.next++;
    await c.query(`UPDATE shop.audit_log SET note = 'seen' WHERE id = $1`, [a]);
  }
  await c.query('COMMIT');
}

/** Runs `transactions` OLTP transactions over `workers` connections; returns the seconds it took. */
export async function runPgOltp(
  connect: () => Promise<pg.Client>,
  o: { transactions: number; workers: number; seed: number; firstId?: number },
): Promise<number> {
  const t0 = performance.now();
  let issued = 0;
  await Promise.all(
    Array.from({ length: o.workers }, async (_, i) => {
      const c = await connect();
      const k: Worker = { w: i + 1, r: prng(o.seed * 7919 + i), next: o.firstId ?? 0, orders: [] };
      try {
        while (issued < o.transactions) {
          issued++;
          await oltpTransaction(c, k);
        }
      } finally {
        await c.end();
      }
    }),
  );
  return (performance.now() - t0) / 1000;
}

/** `bench.lag` on the source; on the targets it has `applied_at` too, stamped when the row is applied there. */
export const LAG_SOURCE =
  'CREATE TABLE bench.lag (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())';
export const LAG_TARGET =
  'CREATE TABLE bench.lag (id bigint PRIMARY KEY, at timestamptz NOT NULL, applied_at timestamptz DEFAULT clock_timestamp())';

/**
 * Paced single-row transactions: id `first + i` is due at start + i / rate; `workers` connections take the next
 * due id. Returns the achieved rate (the machine may not keep up: that is reported, not hidden).
 */
export async function runPaced(
  connect: () => Promise<pg.Client>,
  o: { first: number; rate: number; seconds: number; workers: number },
): Promise<{ transactions: number; txPerS: number }> {
  const total = Math.round(o.rate * o.seconds);
  const t0 = performance.now();
  let i = 0;
  await Promise.all(
    Array.from({ length: o.workers }, async () => {
      const c = await connect();
      // synchronous_commit stays on: a walsender sends only flushed WAL, so with it off the WAL writer's delay
      // (wal_writer_delay, 200 ms) would be measured as lag.
      try {
        for (;;) {
          const n = i++;
          if (n >= total) break;
          const due = t0 + (n * 1000) / o.rate;
          const wait = due - performance.now();
          if (wait > 1) await new Promise((res) => setTimeout(res, wait));
          await c.query('INSERT INTO bench.lag (id) VALUES ($1)', [o.first + n]);
        }
      } finally {
        await c.end();
      }
    }),
  );
  return { transactions: total, txPerS: Math.round(total / ((performance.now() - t0) / 1000)) };
}

/** p50 / p99 of applied_at − at, in ms, over ids [first, first + n) of a target's bench.lag. */
export async function lagPercentiles(c: pg.Client, first: number, n: number): Promise<{ p50: number; p99: number }> {
  const r = await c.query(
    `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d) AS p50, percentile_cont(0.99) WITHIN GROUP (ORDER BY d) AS p99
       FROM (SELECT extract(epoch FROM applied_at - at) * 1000 AS d FROM bench.lag WHERE id >= $1 AND id < $2) x`,
    [first, first + n],
  );
  const row = r.rows[0] as { p50: unknown; p99: unknown };
  return { p50: Math.round(Number(row.p50) * 10) / 10, p99: Math.round(Number(row.p99) * 10) / 10 };
}

/**
 * A seeded random multi-table OLTP workload on a `shop` schema, used by the demo, the crash test and the
 * benchmarks. Deterministic for a given seed and worker count (each worker has its own PRNG stream); exercises
 * inserts, updates, deletes, multi-row transactions, composite keys, a table without a primary key, DECIMAL,
 * DATETIME(6), ENUM, JSON and utf8mb4 text.
 */
import type mysql from 'mysql2/promise';
import { prng } from '../test/fixtures/prng.ts';

export const SHOP_SCHEMA = (db: string): string[] => {
  const q = `\`${db.replaceAll('`', '``')}\``;
  return [
    `CREATE DATABASE IF NOT EXISTS ${q}`,
    `CREATE TABLE IF NOT EXISTS ${q}.customers (
       id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
       name VARCHAR(100) NOT NULL,
       email VARCHAR(190) NULL,
       balance DECIMAL(14,2) NOT NULL DEFAULT 0,
       created DATETIME(6) NOT NULL
     ) ENGINE=InnoDB`,
    `CREATE TABLE IF NOT EXISTS ${q}.orders (
       id BIGINT NOT NULL PRIMARY KEY,
       customer_id INT UNSIGNED NOT NULL,
       status ENUM('new','paid','shipped','cancelled') NOT NULL DEFAULT 'new',
       amount DECIMAL(18,4) NOT NULL,
       meta JSON NULL,
       updated TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
       KEY (customer_id)
     ) ENGINE=InnoDB`,
    `CREATE TABLE IF NOT EXISTS ${q}.order_items (
       order_id BIGINT NOT NULL,
       line_no SMALLINT NOT NULL,
       sku CHAR(8) NOT NULL,
       qty INT NOT NULL,
       price DECIMAL(10,2) NOT NULL,
       PRIMARY KEY (order_id, line_no)
     ) ENGINE=InnoDB`,
    `CREATE TABLE IF NOT EXISTS ${q}.audit_log (
       at DATETIME(6) NOT NULL,
       actor VARCHAR(40) NOT NULL,
       note VARCHAR(200) NULL
     ) ENGINE=InnoDB`,
  ];
};

const NAMES = ['Ada', 'Grace', 'Linus', 'Zoë', 'Jürgen', '李雷', "O'Brien", 'Back`tick', 'Ωmega', 'Émile 🚀'];
const STATUSES = ['new', 'paid', 'shipped', 'cancelled'] as const;

export interface WorkloadOptions {
  db: string;
  seed: number;
  /** Stop after this many transactions in total (across workers)… */
  transactions?: number;
  /** …or after this long. */
  durationMs?: number;
  workers?: number;
  signal?: AbortSignal;
  /** Called after each committed transaction. */
  onCommit?: (n: number) => void;
  /**
   * One transaction of another workload instead of the shop one (it starts and ends the transaction itself, and
   * rolls it back on an error): `r` is the worker's PRNG stream, `worker` counts from 1, `n` is the worker's count.
   */
  transaction?: (c: mysql.Connection, r: () => number, worker: number, n: number) => Promise<void>;
}

export interface WorkloadResult {
  committed: number;
  failed: number;
  elapsedMs: number;
}

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)] as T;
}

function ts(r: () => number): string {
  const d = new Date(Date.UTC(2020, 0, 1) + Math.floor(r() * 1.5e11));
  const us = String(Math.floor(r() * 1e6)).padStart(6, '0');
  return `${d.toISOString().slice(0, 19).replace('T', ' ')}.${us}`;
}

/** One random transaction. Returns false when it had nothing to do (e.g. no rows yet). */
async function oneTransaction(
  c: mysql.Connection,
  db: string,
  r: () => number,
  worker: number,
  n: number,
  seed: number,
) {
  const q = `\`${db.replaceAll('`', '``')}\``;
  const kind = r();
  await c.query('START TRANSACTION');
  try {
    if (kind < 0.3) {
      const [res] = await c.query<mysql.ResultSetHeader>(
        `INSERT INTO ${q}.customers (name, email, balance, created) VALUES (?, ?, ?, ?)`,
        [pick(r, NAMES), r() < 0.2 ? null : `u${worker}.${n}@example.com`, (r() * 1000).toFixed(2), ts(r)],
      );
      // Unique across workers and across runs with different seeds (seed < 100000, worker < 100, n < 1e8).
      const orderId = (seed % 100_000) * 10_000_000_000 + worker * 100_000_000 + n;
      await c.query(`INSERT INTO ${q}.orders (id, customer_id, status, amount, meta) VALUES (?, ?, ?, ?, ?)`, [
        orderId,
        res.insertId,
        pick(r, STATUSES),
        (r() * 10000).toFixed(4),
        r() < 0.3 ? null : JSON.stringify({ w: worker, n, tags: ['a', 'ü'], big: 9007199254740993n.toString() }),
      ]);
      const lines = 1 + Math.floor(r() * 5);
      const vals: unknown[] = [];
      for (let i = 1; i <= lines; i++)
        vals.push([
          orderId,
          i,
          `SKU${Math.floor(r() * 99999)}`.slice(0, 8),
          1 + Math.floor(r() * 9),
          (r() * 100).toFixed(2),
        ]);
      await c.query(`INSERT INTO ${q}.order_items (order_id, line_no, sku, qty, price) VALUES ?`, [vals]);
    } else if (kind < 0.6) {
      await c.query(
        `UPDATE ${q}.orders SET status = ?, amount = amount + ?, updated = NOW(6) WHERE id = (SELECT id FROM (SELECT id FROM ${q}.orders WHERE id % 7 = ? ORDER BY id DESC LIMIT 1) x)`,
        [pick(r, STATUSES), (r() * 10).toFixed(4), Math.floor(r() * 7)],
      );
      await c.query(`UPDATE ${q}.customers SET balance = balance - 1.25 WHERE id % 13 = ? LIMIT 3`, [
        Math.floor(r() * 13),
      ]);
    } else if (kind < 0.75) {
      const [rows] = await c.query<mysql.RowDataPacket[]>(
        `SELECT id FROM ${q}.orders WHERE id % 5 = ? ORDER BY id LIMIT 1`,
        [Math.floor(r() * 5)],
      );
      const id = rows[0]?.['id'];
      if (id !== undefined) {
        await c.query(`DELETE FROM ${q}.order_items WHERE order_id = ?`, [id]);
        await c.query(`DELETE FROM ${q}.orders WHERE id = ?`, [id]);
      }
    } else if (kind < 0.9) {
      await c.query(`INSERT INTO ${q}.audit_log (at, actor, note) VALUES (?, ?, ?), (?, ?, ?)`, [
        ts(r),
        `w${worker}`,
        pick(r, NAMES),
        ts(r),
        `w${worker}`,
        null,
      ]);
      if (r() < 0.3) await c.query(`DELETE FROM ${q}.audit_log WHERE actor = ? LIMIT 1`, [`w${worker}`]);
      if (r() < 0.3) await c.query(`UPDATE ${q}.audit_log SET note = 'seen' WHERE actor = ? LIMIT 1`, [`w${worker}`]);
    } else {
      await c.query(`UPDATE ${q}.order_items SET qty = qty + 1 WHERE order_id % 11 = ? LIMIT 5`, [
        Math.floor(r() * 11),
      ]);
    }
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

export async function runWorkload(
  connect: () => Promise<mysql.Connection>,
  opts: WorkloadOptions,
): Promise<WorkloadResult> {
  const workers = opts.workers ?? 4;
  const start = Date.now();
  const deadline = opts.durationMs === undefined ? Infinity : start + opts.durationMs;
  const limit = opts.transactions ?? Infinity;
  let committed = 0;
  let failed = 0;
  let issued = 0;
  const one: NonNullable<WorkloadOptions['transaction']> =
    opts.transaction ?? ((c, r, w, n) => oneTransaction(c, opts.db, r, w, n, opts.seed));
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      const c = await connect();
      const r = prng(opts.seed * 7919 + w);
      try {
        for (let n = 1; ; n++) {
          if (opts.signal?.aborted || Date.now() >= deadline || issued >= limit) break;
          issued++;
          try {
            await one(c, r, w + 1, n);
            committed++;
            opts.onCommit?.(committed);
          } catch (err) {
            const code = (err as { errno?: number }).errno;
            // Deadlocks and lock waits between workers are normal for a random workload: count and go on.
            if (code === 1213 || code === 1205) failed++;
            else throw err;
          }
        }
      } finally {
        await c.end();
      }
    }),
  );
  return { committed, failed, elapsedMs: Date.now() - start };
}

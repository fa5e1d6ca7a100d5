/**
 * Queues the statements of the open target transaction and sends them several to one simple query (one round trip
 * per ~2 MiB of SQL or 256 statements instead of one per row); `pg` returns one result per statement, so every
 * statement's row count is checked (batcher.ts mismatch()) before anything else is sent. The transaction's
 * `BEGIN; SET LOCAL …` ride with its first query. COMMIT is never queued here: the applier commits only after
 * flush() has checked every row count.
 */
import type pg from 'pg';
import { mismatch, type PgStatement } from './batcher.ts';

/** Flush queued statements at this much SQL text or this many statements. */
const PIPE_BYTES = 2 << 20;
const PIPE_STATEMENTS = 256;

export type SimpleQuery = (sql: string) => Promise<pg.QueryResult | pg.QueryResult[]>;

export class PgPipeline {
  #prefix: string[] = [];
  #queued: PgStatement[] = [];
  #bytes = 0;
  readonly #q: SimpleQuery;
  readonly #target: string;

  constructor(q: SimpleQuery, target: string) {
    this.#q = q;
    this.#target = target;
  }

  /** Statements queued and not sent yet. */
  get queued(): number {
    return this.#queued.length;
  }

  /** Statements without a result to check (BEGIN, SET LOCAL …) sent before the next queued ones. */
  prefix(sql: readonly string[]): void {
    this.#prefix.push(...sql);
  }

  /** Takes the unsent prefix (the applier sends it with the commit when nothing else went out). */
  takePrefix(): string[] {
    const p = this.#prefix;
    this.#prefix = [];
    return p;
  }

  async queue(statements: readonly PgStatement[]): Promise<void> {
    for (const s of statements) {
      this.#queued.push(s);
      this.#bytes += s.sql.length;
    }
    if (this.#bytes >= PIPE_BYTES || this.#queued.length >= PIPE_STATEMENTS) await this.flush();
  }

  /** Sends the prefix and everything queued as one query and checks each statement's rows (throws APPLY_DIVERGED). */
  async flush(): Promise<void> {
    if (this.#queued.length === 0 && this.#prefix.length === 0) return;
    const prefix = this.takePrefix();
    const queued = this.#queued;
    this.#queued = [];
    this.#bytes = 0;
    const res = await this.#q([...prefix, ...queued.map((s) => s.sql)].join(';\n'));
    const results = Array.isArray(res) ? res : [res];
    for (let i = 0; i < queued.length; i++) {
      const s = queued[i]!;
      const r = results[prefix.length + i];
      const returned = s.check === 'returning' ? (r?.rows ?? []).map((row) => Number(row['i'])) : null;
      const err = mismatch(this.#target, s, r?.rowCount ?? 0, returned);
      if (err) throw err;
    }
  }

  /** Forgets everything queued (after a rollback or a failure). */
  clear(): void {
    this.#prefix = [];
    this.#queued = [];
    this.#bytes = 0;
  }
}

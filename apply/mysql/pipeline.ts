/**
 * Queues StatementBatches of the open replica transaction and sends them as pipelined queries (exec.ts): one
 * round trip per ~2 MB of SQL instead of one per batch. The applier opens the transaction (and claims its position
 * row) before the first batch. COMMIT is never queued here: the applier commits only after flush() has checked
 * every row count.
 */
import type { StatementBatch } from './batcher.ts';
import { executePipeline, type QueryFn } from './exec.ts';
import type { Flavor } from '../../mysql/sql.ts';

/** Flush queued batches at this much SQL text or this many batches. */
const PIPE_BYTES = 2 << 20;
const PIPE_BATCHES = 256;

export class Pipeline {
  #batches: StatementBatch[] = [];
  #bytes = 0;
  /** Statements sent ahead of the next batches (e.g. START TRANSACTION), saving a round trip. */
  #prefix: string[] = [];
  readonly #q: QueryFn;
  readonly #flavor: () => Flavor;

  constructor(q: QueryFn, flavor: () => Flavor) {
    this.#q = q;
    this.#flavor = flavor;
  }

  async queue(b: StatementBatch): Promise<void> {
    this.#batches.push(b);
    this.#bytes += b.sql.length;
    if (this.#bytes >= PIPE_BYTES || this.#batches.length >= PIPE_BATCHES) await this.flush();
  }

  /** Sends and checks everything queued (throws DivergenceError / wrapped server errors). */
  async flush(): Promise<void> {
    if (this.#batches.length === 0 && this.#prefix.length === 0) return;
    const batches = this.#batches;
    const prefix = this.#prefix;
    this.clear();
    await executePipeline(this.#q, batches, this.#flavor(), prefix);
  }

  /** Sends `sql` (no result rows) in front of the next flush (at the latest when flush() is called). */
  prepend(sql: string): void {
    this.#prefix.push(sql);
  }

  /** Forgets everything queued (after a rollback or a failure). */
  clear(): void {
    this.#batches = [];
    this.#bytes = 0;
    this.#prefix = [];
  }
}

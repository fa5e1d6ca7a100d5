/**
 * Queues StatementBatches of the open replica transaction and sends them as pipelined queries (exec.ts): one
 * round trip per ~2 MB of SQL instead of one per batch. The group's START TRANSACTION rides along with its first
 * query. COMMIT is never queued here: the applier commits only after flush() has checked every row count.
 */
import type { StatementBatch } from './batcher.ts';
import { executePipeline, type QueryFn } from './exec.ts';
import type { Flavor } from './sql.ts';

/** Flush queued batches at this much SQL text or this many batches. */
const PIPE_BYTES = 2 << 20;
const PIPE_BATCHES = 256;

export class Pipeline {
  #batches: StatementBatch[] = [];
  #bytes = 0;
  #beginDue = false;
  readonly #q: QueryFn;
  readonly #flavor: () => Flavor;

  constructor(q: QueryFn, flavor: () => Flavor) {
    this.#q = q;
    this.#flavor = flavor;
  }

  /** A new replica transaction starts: its START TRANSACTION goes first in the next query. */
  begin(): void {
    this.#beginDue = true;
  }

  /** Takes the pending START TRANSACTION (for a commit query that carries it itself), as SQL or ''. */
  takeBegin(): string {
    const s = this.#beginDue ? 'START TRANSACTION;\n' : '';
    this.#beginDue = false;
    return s;
  }

  async queue(b: StatementBatch): Promise<void> {
    this.#batches.push(b);
    this.#bytes += b.sql.length;
    if (this.#bytes >= PIPE_BYTES || this.#batches.length >= PIPE_BATCHES) await this.flush();
  }

  /** Sends and checks everything queued (throws DivergenceError / wrapped server errors). */
  async flush(): Promise<void> {
    if (this.#batches.length === 0) return;
    const batches = this.#batches;
    const prefix = this.#beginDue ? ['START TRANSACTION'] : [];
    this.clear();
    await executePipeline(this.#q, batches, this.#flavor(), prefix);
  }

  /** Forgets everything queued (after a rollback or a failure). */
  clear(): void {
    this.#batches = [];
    this.#bytes = 0;
    this.#beginDue = false;
  }
}

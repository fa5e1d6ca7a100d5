/**
 * Queues StatementBatches of the open replica transaction and sends them as pipelined queries (exec.ts): one
 * round trip per ~2 MB of SQL instead of one per batch. The applier opens the transaction (and claims its position
 * row) before the first batch. COMMIT is never queued here: the applier commits only after flush() has checked
 * every row count.
 *
 * A LOAD DATA batch ends its query (exec.ts serves it as the query's local file): it is sent as soon as it is
 * queued, with whatever was queued before it.
 *
 * Overlap (option): a full query is sent and queue() returns at once, so the caller turns the next rows into
 * statements while the server runs these — one query in flight at most, its outcome (row counts, errors) awaited
 * before the next one is sent and by flush(). Nothing changes for exactly-once: the transaction still commits only
 * after flush() returned, so every count has been checked; a failure surfaces from the next queue() or flush().
 */
import type { StatementBatch } from './batcher.ts';
import { executePipeline, type QueryFn } from './exec.ts';
import type { Flavor } from '../../mysql/sql.ts';

/** Flush queued batches at this much SQL text or this many batches. */
const PIPE_BYTES = 2 << 20;
const PIPE_BATCHES = 256;

export interface PipelineOptions {
  /** Keep one query in flight while the caller builds the next (see the file comment). Default false. */
  readonly overlap?: boolean;
  /** Send at this much queued SQL text (default 2 MiB). */
  readonly maxBytes?: number;
}

export class Pipeline {
  #batches: StatementBatch[] = [];
  #bytes = 0;
  /** Statements sent ahead of the next batches (e.g. START TRANSACTION), saving a round trip. */
  #prefix: string[] = [];
  /** The query sent and not yet checked (overlap). */
  #inFlight: Promise<void> | null = null;
  readonly #q: QueryFn;
  readonly #flavor: () => Flavor;
  readonly #overlap: boolean;
  readonly #maxBytes: number;

  constructor(q: QueryFn, flavor: () => Flavor, opts: PipelineOptions = {}) {
    this.#q = q;
    this.#flavor = flavor;
    this.#overlap = opts.overlap === true;
    this.#maxBytes = opts.maxBytes ?? PIPE_BYTES;
  }

  /**
   * Adds `b`; returns the send when this fills a query, else undefined (most batches: the caller then awaits
   * nothing, and no promise is made per batch).
   */
  queue(b: StatementBatch): Promise<void> | undefined {
    this.#batches.push(b);
    this.#bytes += b.sql.length;
    if (b.kind === 'load' || this.#bytes >= this.#maxBytes || this.#batches.length >= PIPE_BATCHES) {
      return this.#send();
    }
    return undefined;
  }

  /** Sends and checks everything queued (throws DivergenceError / wrapped server errors). */
  async flush(): Promise<void> {
    if (this.#batches.length > 0 || this.#prefix.length > 0) await this.#send();
    await this.#settle();
  }

  /** Sends `sql` (no result rows) in front of the next batches sent (at the latest when flush() is called). */
  prepend(sql: string): void {
    this.#prefix.push(sql);
  }

  /**
   * Forgets everything queued, after waiting for a query in flight to end (its outcome ignored): a ROLLBACK sent
   * next then comes after it and after anything its check sent.
   */
  async abandon(): Promise<void> {
    const p = this.#inFlight;
    this.clear();
    if (p) await p.catch(() => {});
  }

  /** Forgets everything queued and the outcome of a query in flight (after a rollback or a failure). */
  clear(): void {
    this.#batches = [];
    this.#bytes = 0;
    this.#prefix = [];
    this.#inFlight = null;
  }

  /** Sends what is queued once the query before it is checked; with overlap, does not wait for this one. */
  async #send(): Promise<void> {
    const batches = this.#batches;
    const prefix = this.#prefix;
    this.#batches = [];
    this.#bytes = 0;
    this.#prefix = [];
    await this.#settle();
    const sent = executePipeline(this.#q, batches, this.#flavor(), prefix);
    if (!this.#overlap) return sent;
    sent.catch(() => {}); // observed by the next #settle(); until then not an unhandled rejection
    this.#inFlight = sent;
  }

  async #settle(): Promise<void> {
    const p = this.#inFlight;
    this.#inFlight = null;
    if (p) await p;
  }
}

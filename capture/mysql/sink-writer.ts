/**
 * Hands entries to the EntrySink with bounded memory and bounded latency:
 *   - append() awaits the sink when it pushes back (a returned promise), so a slow journal slows capture down;
 *   - commit() does NOT wait for durability (group fsync may resolve later) but keeps at most `maxOutstanding`
 *     commits in flight, waiting for the oldest beyond that;
 *   - any sink failure is final (SINK, not retriable): after it, what the journal holds is unknown to capture.
 * It also counts entries appended since the last commit, which is what a restart must not append again.
 */
import { TidemarkError } from '../../core/errors.ts';
import type { CommitEntry, DdlEntry, EntrySink, RowsEntry } from '../../record/record.ts';

export class SinkError extends TidemarkError {
  constructor(message: string, cause: unknown) {
    super(message, { code: 'SINK', retriable: false, cause });
    this.name = 'SinkError';
  }
}

export class SinkWriter {
  private readonly sink: EntrySink;
  private readonly maxOutstanding: number;
  private readonly outstanding: Promise<void>[] = [];
  private failure: SinkError | null = null;
  private uncommitted = 0;
  private lastCommit: CommitEntry | null = null;

  constructor(sink: EntrySink, maxOutstanding = 64) {
    this.sink = sink;
    this.maxOutstanding = Math.max(1, maxOutstanding);
  }

  /** Entries appended since the last commit. */
  get openEntries(): number {
    return this.uncommitted;
  }

  /** The last commit entry handed to the sink (not necessarily durable yet). */
  get lastCommitted(): CommitEntry | null {
    return this.lastCommit;
  }

  get failed(): boolean {
    return this.failure !== null;
  }

  private check(): void {
    if (this.failure) throw this.failure;
  }

  async append(entry: RowsEntry | DdlEntry): Promise<void> {
    this.check();
    try {
      const r = this.sink.append(entry);
      this.uncommitted++;
      if (r) await r;
    } catch (err) {
      this.failure ??= new SinkError(`journal refused entry seq ${entry.seq}`, err);
      throw this.failure;
    }
  }

  async commit(entry: CommitEntry): Promise<void> {
    this.check();
    let p: Promise<void>;
    try {
      p = this.sink.commit(entry);
    } catch (err) {
      this.failure ??= new SinkError(`journal refused commit seq ${entry.seq}`, err);
      throw this.failure;
    }
    this.uncommitted = 0;
    this.lastCommit = entry;
    const tracked = p.then(
      () => {},
      (err: unknown) => {
        this.failure ??= new SinkError(`journal failed to make commit seq ${entry.seq} durable`, err);
      },
    );
    this.outstanding.push(tracked);
    while (this.outstanding.length > this.maxOutstanding) await this.outstanding.shift();
    this.check();
  }

  /** Waits until every commit handed over is durable; throws the first sink failure. */
  async drain(): Promise<void> {
    while (this.outstanding.length > 0) await this.outstanding.shift();
    this.check();
  }
}

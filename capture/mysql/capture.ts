/**
 * MysqlCapture: the capture adapter for one MySQL/MariaDB source.
 *
 *   run(signal):
 *     1. connect and check prerequisites (prerequisites.ts); unreachable -> retried with backoff (CONNECT),
 *        wrong password (AUTH) and unfit server (PREREQUISITE) -> thrown at once
 *     2. no resume point, an unfinished baseline (last commit phase "baseline"), or forceBaseline
 *        -> take a baseline (baseline.ts), retried from scratch on retriable failures
 *     3. stream the binlog from the resume point (stream.ts); on retriable failures reconnect with backoff from
 *        exactly where the last stream stopped (no gap, no duplicate entry in the journal)
 *   It resolves when `signal` aborts (after reaching a transaction boundary, or a short grace period) and
 *   rejects on non-retriable errors (purged binlog, sink failure, unsupported column types, …).
 *
 * Seqs continue from the resume commit: nextSeq = resume.seq + 1.
 */
import type { Logger } from 'pino';
import type { ResolvedEndpoint } from '../../core/secret.ts';
import type { SourceConfig } from './config.ts';
import { backoff, withRetry } from '../../core/backoff.ts';
import { isRetriable, sleep, TidemarkError } from '../../core/errors.ts';
import { asMysql, formatPosition, type MysqlPosition } from '../../record/position.ts';
import type { CommitEntry, EntrySink } from '../../record/record.ts';
import type { BaselineLedger } from '../../engine/source.ts';
import { Baseline, type BaselineResult } from './baseline.ts';
import { endpointOf, openSourceConnection } from './connection.ts';
import { createTableFilter, literalSchemas, type TableFilter } from '../../mysql/table-filter.ts';
import { checkPrerequisites } from './prerequisites.ts';
import { SinkError, SinkWriter } from './sink-writer.ts';
import { BinlogStream } from './stream.ts';
import type { ResumePoint, StreamTuning } from './stream-options.ts';
import { tableCopier } from './table-copy.ts';

export { sourceStatus } from './status.ts';

export interface RetryTuning {
  readonly attempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export interface MysqlCaptureOptions {
  readonly source: ResolvedEndpoint<SourceConfig>;
  readonly sink: EntrySink;
  /** The last commit entry of this source in the journal, or null for a new journal. */
  readonly resume: CommitEntry | null;
  readonly log: Logger;
  /** Take a new baseline even though the journal has a resume point (e.g. after BINLOG_PURGED). */
  readonly forceBaseline?: boolean;
  /** Commits in flight before capture waits for durability (group fsync). Default 64. */
  readonly maxOutstandingCommits?: number;
  readonly stream?: Partial<StreamTuning>;
  readonly retry?: Partial<RetryTuning>;
  /** Tables of whole baselines that did not finish (engine/source.ts BaselineLedger). */
  readonly baselineLedger?: BaselineLedger;
}

export type CapturePhase = 'starting' | 'baseline' | 'streaming' | 'stopped';

export interface CaptureStatus {
  readonly phase: CapturePhase;
  /** Position of the last commit handed to the journal. */
  readonly position: MysqlPosition | null;
  /** Position after the last binlog event group read, including groups with nothing to capture. */
  readonly readPosition: MysqlPosition | null;
  readonly nextSeq: bigint;
  readonly reconnects: number;
  /** Times the binlog connection was paused because the journal could not keep up (all streams of this run). */
  readonly pauses: number;
}

const DEFAULT_RETRY: RetryTuning = { attempts: 10, baseDelayMs: 500, maxDelayMs: 30_000 };

export class MysqlCapture {
  private readonly o: MysqlCaptureOptions;
  private readonly log: Logger;
  private readonly filter: TableFilter;
  private readonly writer: SinkWriter;
  private readonly retry: RetryTuning;
  private readonly warnedNoPk = new Set<string>();
  private phase: CapturePhase = 'starting';
  private nextSeq: bigint;
  private reconnects = 0;
  private current: BinlogStream | null = null;
  private pastPauses = 0;

  constructor(opts: MysqlCaptureOptions) {
    this.o = opts;
    this.log = opts.log.child({ component: 'capture', source: opts.source.name });
    this.filter = createTableFilter(opts.source.include, opts.source.exclude);
    this.writer = new SinkWriter(opts.sink, opts.maxOutstandingCommits ?? 64);
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.nextSeq = opts.resume ? opts.resume.seq + 1n : 1n;
  }

  status(): CaptureStatus {
    const last = this.writer.lastCommitted;
    const committed = last ? asMysql(last.position, 'the last commit') : this.resumePosition();
    return {
      phase: this.phase,
      position: committed,
      readPosition: this.current?.readPosition ?? committed,
      nextSeq: this.nextSeq,
      reconnects: this.reconnects,
      pauses: this.pastPauses + (this.current?.pauses ?? 0),
    };
  }

  /** The journal's resume point, which a MySQL source's journal holds as a binlog position. */
  private resumePosition(): MysqlPosition | null {
    const p = this.o.resume?.position;
    return p ? asMysql(p, 'the journal resume point') : null;
  }

  async run(signal: AbortSignal): Promise<void> {
    try {
      await this.runPhases(signal);
    } catch (err) {
      // Failures caused by the abort itself (closed connections, give-up of a retry loop) are not errors.
      if (!signal.aborted || err instanceof SinkError) {
        this.phase = 'stopped';
        await this.writer.drain().catch(() => {});
        throw err;
      }
    }
    this.phase = 'stopped';
    await this.writer.drain();
  }

  private async runPhases(signal: AbortSignal): Promise<void> {
    const baselineDue = this.baselineDue();
    // The last baseline finished (a crash may have come between its end and the ledger's clearing).
    if (this.o.resume && this.o.resume.phase !== 'baseline') await this.o.baselineLedger?.clear();
    await this.withRetry('connect to the source', signal, () => this.checkSource(baselineDue));
    if (signal.aborted) return;
    let from: ResumePoint;
    if (baselineDue) {
      this.phase = 'baseline';
      const result = await this.withRetry('take the baseline', signal, () => this.baseline(signal));
      if (!result) return;
      from = { start: result.position, nextSeq: result.nextSeq, replay: null };
    } else {
      const resume = this.o.resume!;
      from = {
        start: asMysql(resume.position, 'the journal resume point'),
        nextSeq: this.nextSeq,
        replay: null,
        copied: resume.copied,
      };
    }
    this.phase = 'streaming';
    await this.stream(from, signal);
  }

  private baselineDue(): boolean {
    const r = this.o.resume;
    if (this.o.forceBaseline) return true;
    if (r === null) return true;
    if (r.phase === 'baseline') {
      this.log.warn({ seq: r.seq.toString() }, 'the last baseline did not finish: taking a new one');
      return true;
    }
    return false;
  }

  private async withRetry<T>(what: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    return withRetry(fn, {
      ...this.retry,
      what,
      signal,
      onRetry: (err, attempt, delayMs) => {
        this.reconnects++;
        this.log.warn({ err: describe(err), attempt, delayMs }, `${what}: retrying`);
      },
    });
  }

  private async checkSource(baselineDue: boolean): Promise<void> {
    const conn = await openSourceConnection(this.o.source, 'connect');
    try {
      await checkPrerequisites(
        conn.promise,
        this.filter,
        {
          endpoint: endpointOf(this.o.source),
          serverId: this.o.source.server_id,
          baselineDue,
          literalSchemas: literalSchemas(this.o.source.include),
        },
        this.log,
      );
    } finally {
      await conn.close();
    }
  }

  private async baseline(signal: AbortSignal): Promise<BaselineResult | null> {
    if (signal.aborted) return null;
    const b = new Baseline({
      source: this.o.source,
      filter: this.filter,
      writer: this.writer,
      log: this.log,
      nextSeq: this.nextSeq,
      signal,
      objects: true,
      onNoPrimaryKey: (s, t) => this.warnNoPk(s, t),
      ...(this.o.baselineLedger ? { ledger: this.o.baselineLedger } : {}),
    });
    try {
      const result = await b.run();
      this.nextSeq = result.nextSeq;
      return result;
    } catch (err) {
      this.nextSeq = b.nextSeq; // a retry continues the seq after what reached the journal
      throw err;
    }
  }

  private warnNoPk(schema: string, table: string): void {
    const key = `${schema}.${table}`;
    if (this.warnedNoPk.has(key)) return;
    this.warnedNoPk.add(key);
    this.log.warn({ table: key }, 'table has no primary key: changes are captured with pk = [] (full-row matching)');
  }

  /** Streams with reconnects; failures reset their count whenever a stream made progress. */
  private async stream(initial: ResumePoint, signal: AbortSignal): Promise<void> {
    let from = initial;
    let failures = 0;
    const delays = backoff(this.retry.baseDelayMs, this.retry.maxDelayMs);
    for (;;) {
      const s = new BinlogStream({
        source: this.o.source,
        filter: this.filter,
        writer: this.writer,
        log: this.log,
        from,
        tuning: this.o.stream,
        onNoPrimaryKey: (sc, t) => this.warnNoPk(sc, t),
        copyTable: tableCopier({
          source: this.o.source,
          writer: this.writer,
          log: this.log,
          signal,
          onNoPrimaryKey: (sc, t) => this.warnNoPk(sc, t),
        }),
        lastCommitTimeUs: this.o.resume?.commitTimeUs,
      });
      if (this.current) this.pastPauses += this.current.pauses;
      this.current = s;
      try {
        await s.run(signal);
        this.nextSeq = s.resumePoint().nextSeq;
        return;
      } catch (err) {
        from = s.resumePoint();
        this.nextSeq = from.nextSeq;
        if (!isRetriable(err) || signal.aborted) throw err;
        if (s.madeProgress) {
          failures = 0;
          delays.reset();
        }
        failures++;
        if (failures >= this.retry.attempts) {
          throw new TidemarkError(`read the binlog: gave up after ${failures} attempts`, {
            code: 'RETRIES_EXHAUSTED',
            retriable: false,
            cause: err,
          });
        }
        this.reconnects++;
        const delay = delays.next();
        this.log.warn(
          { err: describe(err), attempt: failures, delayMs: delay, from: formatPosition(from.start) },
          'binlog stream failed: reconnecting',
        );
        await sleep(delay, signal);
        if (signal.aborted) return;
      }
    }
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

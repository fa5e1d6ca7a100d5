/**
 * Pieces of a transport's session, whatever the wire: the session loop with backoff and link states (every
 * shipper, tcp, kafka and redis, and the broker receivers), batching a frames source, and coalesced
 * acknowledgement reports (every shipper: AckCoalescer; the brokers' AckReporter on top of it). No transport code
 * in here.
 */
import type { Logger } from 'pino';
import { backoff } from '../core/backoff.ts';
import { describeChain, type ErrorCode, isRetriable, sleep, TidemarkError } from '../core/errors.ts';
import { lastUnitEnd, type WireFrame } from './frame.ts';
import type { LinkState, LinkStatus } from './link-status.ts';

/** The states a session loop goes through (a subset of LinkState). */
export type LoopState = Extract<LinkState, 'connecting' | 'streaming' | 'backoff' | 'done' | 'stopped' | 'failed'>;

export interface SessionLoopOptions {
  log: Logger;
  signal: AbortSignal;
  /** For log lines: "kafka shipper", "redis receiver"… */
  what: string;
  /** The log line of a failed session before the retry, after "<what>: ". Default "session failed; retrying". */
  retryMessage?: string;
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
}

/** A session loop end's status: the link status, and `sessions` (the same count as connects, by its name here). */
export interface SessionStatus extends LinkStatus {
  readonly sessions: number;
}

/** A broker shipper's status: also the LSN the current or last session resumed from. */
export interface SessionShipperStatus extends SessionStatus {
  readonly resumedAt: bigint;
}

/** What an end holds: a shipper's AckReporter, or a receiver's durable marks. */
export interface HeldMarks {
  readonly lsn: bigint;
  readonly unitLsn: bigint;
  readonly lastAckAt: Date | null;
}

/** A receiver's marks after `frames` (consecutive, after held.lsn) were made durable. */
export function durableMarks(held: HeldMarks, frames: readonly WireFrame[]): HeldMarks {
  const unit = lastUnitEnd(frames);
  return {
    lsn: (frames[frames.length - 1] as WireFrame).lsn,
    unitLsn: unit !== null && unit > held.unitLsn ? unit : held.unitLsn,
    lastAckAt: new Date(),
  };
}

/**
 * Runs `session` until it returns true (done), the signal aborts (stopped) or it throws a non-retriable error
 * (failed: rethrown). A retriable error waits (exponential backoff, reset once a session got to streaming) and
 * starts a new session.
 */
export class SessionLoop {
  state: LoopState = 'connecting';
  sessions = 0;
  lastError: string | null = null;
  private readonly o: SessionLoopOptions;

  constructor(o: SessionLoopOptions) {
    this.o = o;
  }

  /** The link status of an end run by this loop that holds `held`. */
  linkStatus(held: HeldMarks): LinkStatus {
    return {
      state: this.state,
      ackedLsn: held.lsn,
      ackedUnitLsn: held.unitLsn,
      lastAckAt: held.lastAckAt,
      connects: this.sessions,
      lastError: this.lastError,
    };
  }

  /** linkStatus, and `sessions` (the brokers' name for connects). */
  status(held: HeldMarks): SessionStatus {
    return { ...this.linkStatus(held), sessions: this.sessions };
  }

  setState(state: LoopState, extra: Record<string, unknown> = {}): void {
    if (state !== this.state) this.o.log.info({ ...extra, from: this.state, to: state }, `${this.o.what}: ${state}`);
    this.state = state;
  }

  async run(session: () => Promise<boolean>): Promise<void> {
    const delays = backoff(this.o.reconnectBaseMs ?? 250, this.o.reconnectMaxMs ?? 30_000);
    while (!this.o.signal.aborted) {
      this.setState('connecting');
      this.sessions++;
      try {
        if (await session()) {
          this.setState('done');
          return;
        }
      } catch (err) {
        if (this.o.signal.aborted) break;
        this.lastError = describeChain(err);
        if (!isRetriable(err)) {
          this.o.log.error({ err: this.lastError }, `${this.o.what}: giving up: ${this.lastError}`);
          this.setState('failed');
          throw err;
        }
        if (this.state === 'streaming') delays.reset();
        const delay = delays.next();
        const message = this.o.retryMessage ?? 'session failed; retrying';
        this.o.log.warn({ err: this.lastError, retryInMs: delay }, `${this.o.what}: ${message}`);
        this.setState('backoff');
        await sleep(delay, this.o.signal);
      }
    }
    this.setState('stopped');
  }
}

export interface FrameBatch {
  readonly frames: WireFrame[];
  readonly bytes: number;
}

const NOT_READY = Symbol('not ready');

function nextTurn(): Promise<typeof NOT_READY> {
  return new Promise((resolve) => setImmediate(() => resolve(NOT_READY)));
}

/**
 * Groups the frames of `source` (which must start at `from` and be consecutive) into batches: a batch is handed
 * out at `maxBytes` bytes (payload, plus `overheadBytes` per frame: what the wire spends on it) or `maxFrames`
 * frames, or as soon as the source has nothing ready. A source that skips or repeats an LSN is a non-retriable
 * SHIP_SOURCE error. The next frame is read only when the consumer asks for the next batch.
 */
export async function* batchFrames(
  source: AsyncIterable<WireFrame>,
  from: bigint,
  maxBytes: number,
  maxFrames: number,
  overheadBytes = 0,
): AsyncGenerator<FrameBatch> {
  const it = source[Symbol.asyncIterator]();
  let frames: WireFrame[] = [];
  let bytes = 0;
  let expect = from;
  let pending: Promise<IteratorResult<WireFrame>> | null = null;
  try {
    for (;;) {
      pending ??= it.next();
      const r = frames.length === 0 ? await pending : await Promise.race([pending, nextTurn()]);
      if (r === NOT_READY) {
        yield { frames, bytes };
        frames = [];
        bytes = 0;
        continue;
      }
      pending = null;
      if (r.done) break;
      const f = r.value;
      if (f.lsn !== expect) {
        throw new TidemarkError(`ship: the frames source gave LSN ${f.lsn} where ${expect} was due`, {
          code: 'SHIP_SOURCE',
          context: { expected: expect, got: f.lsn },
        });
      }
      expect++;
      frames.push(f);
      bytes += overheadBytes + f.payload.length;
      if (bytes >= maxBytes || frames.length >= maxFrames) {
        yield { frames, bytes };
        frames = [];
        bytes = 0;
      }
    }
    if (frames.length > 0) yield { frames, bytes };
  } finally {
    void it.return?.()?.catch(() => undefined);
  }
}

export interface Ack {
  /** Every frame up to this LSN is durable in the broker. */
  readonly lsn: bigint;
  /** The highest of them that ends a unit. */
  readonly unitLsn: bigint;
}

/**
 * Hands acknowledgements to `onAck`, coalesced: a slow onAck sees only the latest value, and calls never overlap.
 * onAck failures are logged, not fatal (the next ack reports again).
 */
export class AckCoalescer {
  private readonly onAck: (a: Ack) => void | Promise<void>;
  private readonly log: Logger;
  private pending: Ack | null = null;
  private running = false;

  constructor(onAck: (a: Ack) => void | Promise<void>, log: Logger) {
    this.onAck = onAck;
    this.log = log;
  }

  report(a: Ack): void {
    this.pending = a;
    if (this.running) return;
    this.running = true;
    void (async () => {
      while (this.pending !== null) {
        const next = this.pending;
        this.pending = null;
        try {
          await this.onAck(next);
        } catch (err) {
          this.log.error({ err: describeChain(err), lsn: String(next.lsn) }, 'ship: onAck failed');
        }
      }
      this.running = false;
    })();
  }
}

/** Tracks what the broker holds and reports it through an AckCoalescer. */
export class AckReporter {
  lsn = 0n;
  unitLsn: bigint;
  lastAckAt: Date | null = null;
  private readonly acks: AckCoalescer | null;

  constructor(onAck: ((a: Ack) => void | Promise<void>) | undefined, unitLsn: bigint, log: Logger) {
    this.acks = onAck ? new AckCoalescer(onAck, log) : null;
    this.unitLsn = unitLsn;
  }

  /**
   * A session resumed after `lsn`, the broker's top; `unitLsn`: the top when it ends a unit (else null). What an
   * earlier session added is reported even when that session ended before its reply: without it, a standby whose
   * last unit landed that way would stay "behind" by that unit until the next one.
   */
  resumed(lsn: bigint, unitLsn: bigint | null): void {
    if (lsn > this.lsn || this.lastAckAt === null || (unitLsn !== null && unitLsn > this.unitLsn)) {
      this.note(lsn > this.lsn || this.lastAckAt === null ? lsn : this.lsn, unitLsn);
    }
  }

  /** The broker holds every frame up to `lsn`; `unitLsn` the highest unit end among them (if known). */
  note(lsn: bigint, unitLsn: bigint | null): void {
    this.lsn = lsn;
    if (unitLsn !== null && unitLsn > this.unitLsn) this.unitLsn = unitLsn;
    this.lastAckAt = new Date();
    this.acks?.report({ lsn, unitLsn: this.unitLsn });
  }
}

/** Rejects after `ms` with a retriable error naming `what`, unless `p` settles first. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string, code: ErrorCode): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new TidemarkError(`${what}: no answer within ${ms} ms`, { code, retriable: true })),
      ms,
    );
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

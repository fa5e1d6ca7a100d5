/**
 * Acknowledgement behind the journal, pipelined: capture hands each stream commit to the sink and goes on with the
 * next transactions while the journal makes it durable (group fsync); every confirm to the server waits until each
 * commit handed over before it is durable, and confirms go out in order. Awaiting each commit's fsync before
 * reading the next transaction capped capture at one transaction per fsync (~150 tx/s on the CI machine, issue #14
 * asks for 1k tx/s). At most `maxInFlight` commits wait for durability at once (bounded memory and lag).
 * A sink failure is final: no confirm goes out after it, and the next call throws it (SINK, not retriable).
 */
import { TidemarkError } from '../../core/errors.ts';

export class DurableAcks {
  readonly #confirm: (lsn: bigint) => void;
  readonly #maxInFlight: number;
  readonly #inFlight: Promise<void>[] = [];
  #tail: Promise<void> = Promise.resolve();
  #failure: TidemarkError | undefined;

  constructor(confirm: (lsn: bigint) => void, maxInFlight = 256) {
    this.#confirm = confirm;
    this.#maxInFlight = Math.max(1, maxInFlight);
  }

  /** A commit handed to the sink; `durable` resolves once the journal holds it. Waits while too many are in flight. */
  async track(durable: Promise<void>, seq: bigint): Promise<void> {
    // The handler is attached first: a rejection is never unhandled, even when an earlier failure throws below.
    const step = Promise.all([this.#tail, durable]).then(
      () => {},
      (err: unknown) => {
        this.#failure ??=
          err instanceof TidemarkError
            ? err
            : new TidemarkError(`the journal failed to make commit seq ${seq} durable`, {
                code: 'SINK',
                retriable: false,
                cause: err,
              });
      },
    );
    this.#check();
    this.#tail = step;
    this.#inFlight.push(step);
    while (this.#inFlight.length > this.#maxInFlight) await this.#inFlight.shift();
    this.#check();
  }

  /** Confirms `lsn` to the server once every commit tracked so far is durable (never after a failure). */
  confirmAfter(lsn: bigint): void {
    this.#check();
    this.#tail = this.#tail.then(() => {
      if (this.#failure) return;
      try {
        this.#confirm(lsn);
      } catch (err) {
        this.#failure ??=
          err instanceof TidemarkError ? err : new TidemarkError('confirm failed', { code: 'INTERNAL', cause: err });
      }
    });
  }

  /** Waits until every commit tracked is durable and every confirm went out; throws the first failure. */
  async drain(): Promise<void> {
    await this.#tail;
    this.#inFlight.length = 0;
    this.#check();
  }

  #check(): void {
    if (this.#failure) throw this.#failure;
  }
}

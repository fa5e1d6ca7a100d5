/**
 * The appliers' check that the journal they are given belongs to their source and only moves forward (seq and
 * LSN), entry by entry: anything else is corruption, never applied.
 */
import { CorruptionError } from '../../core/errors.ts';
import { seqSpan } from '../../record/record.ts';
import type { JournalItem } from '../../engine/target.ts';

export class JournalOrder {
  readonly #source: string;
  #nextSeq = 0n;
  #lastLsn = -1n;

  constructor(source: string) {
    this.#source = source;
  }

  /** LSN of the last entry checked (-1n before the first). */
  get lastLsn(): bigint {
    return this.#lastLsn;
  }

  /** The first seq the next entry may have. */
  get nextSeq(): bigint {
    return this.#nextSeq;
  }

  check(item: JournalItem): void {
    const e = item.entry;
    if (e.source !== this.#source) {
      throw new CorruptionError(`journal entry of source "${e.source}" given to the applier of "${this.#source}"`, {
        seq: e.seq,
      });
    }
    if (e.seq < this.#nextSeq || item.lsn <= this.#lastLsn) {
      throw new CorruptionError(
        `journal went backwards: seq ${e.seq} at lsn ${item.lsn} where seq >= ${this.#nextSeq} and lsn > ${this.#lastLsn} were due`,
        { seq: e.seq, lsn: item.lsn },
      );
    }
    this.#nextSeq = e.seq + seqSpan(e);
    this.#lastLsn = item.lsn;
  }
}

/** Errors the journal raises besides CorruptionError. */
import { TidemarkError } from '../core/errors.ts';

/**
 * The writer removed frames this reader had already delivered (it truncated an unfinished unit on recovery).
 * Retriable: restart reading from the last acknowledged cursor.
 */
export class JournalTruncatedError extends TidemarkError {
  constructor(message: string, context: { dir: string; deliveredLsn: bigint; truncatedToLsn?: bigint }) {
    super(message, { code: 'JOURNAL_TRUNCATED', retriable: true, context });
    this.name = 'JournalTruncatedError';
  }
}

/** Another live process holds the journal directory's writer lock. */
export class JournalLockedError extends TidemarkError {
  constructor(message: string, context: { dir: string; pid: number }) {
    super(message, { code: 'JOURNAL_LOCKED', retriable: false, context });
    this.name = 'JournalLockedError';
  }
}

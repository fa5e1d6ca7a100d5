/**
 * Rewind's error codes (rewind, forward, undo, restore) over the one MySQL classification (mysql/errors.ts):
 * a retriable error is REWIND_RETRY, a read-only target REWIND_READ_ONLY, anything else REWIND_FAILED; a session
 * whose setup did not take effect REWIND_SESSION, a value that cannot be written as SQL REWIND_VALUE. Before
 * issue #12 these carried the applier's APPLY_* codes.
 */
import { type ErrorContext, TidemarkError } from '../core/errors.ts';
import { type ErrorCodes, wrapMysqlError } from '../mysql/errors.ts';
import { ValueError } from '../mysql/sql.ts';

export const REWIND_CODES: ErrorCodes = {
  retry: 'REWIND_RETRY',
  failed: 'REWIND_FAILED',
  session: 'REWIND_SESSION',
  byClass: { 'read-only': 'REWIND_READ_ONLY' },
};

/** Wraps a driver error met while rewinding (statement text stripped, errno/SQLSTATE kept in context). */
export function rewindDbError(err: unknown, what: string, context: ErrorContext = {}): TidemarkError {
  return wrapMysqlError(err, what, REWIND_CODES, context);
}

/** A value mysql/sql.ts cannot write as a literal (APPLY_VALUE there) as rewind's REWIND_VALUE; others as they are. */
export function rewindValueError(err: unknown): unknown {
  if (!(err instanceof ValueError)) return err;
  return new TidemarkError(err.message, { code: 'REWIND_VALUE', retriable: false, cause: err, context: err.context });
}

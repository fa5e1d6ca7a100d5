/**
 * Rewind's error codes (rewind, forward, undo, restore) over the one MySQL classification (mysql/errors.ts):
 * a retriable error is REWIND_RETRY, a read-only target REWIND_READ_ONLY, anything else REWIND_FAILED; a session
 * whose setup did not take effect REWIND_SESSION. Before issue #12 these carried the applier's APPLY_* codes.
 */
import type { ErrorContext, TidemarkError } from '../core/errors.ts';
import { type ErrorCodes, wrapMysqlError } from '../mysql/errors.ts';

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

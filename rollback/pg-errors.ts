/**
 * Rewind's error codes on a PostgreSQL server, over the one PostgreSQL classification (postgres/errors.ts), as
 * rollback/errors.ts does for MySQL: a retriable error is REWIND_RETRY, a read-only server (SQLSTATE 25006)
 * REWIND_READ_ONLY, anything else REWIND_FAILED; a TidemarkError keeps its own code. The message, SQLSTATE and the
 * server's fields come from wrapPgError.
 */
import { type ErrorContext, TidemarkError } from '../core/errors.ts';
import { classifyPgError, sqlStateOf, wrapPgError } from '../postgres/errors.ts';

export function rewindPgError(err: unknown, what: string, context: ErrorContext = {}): TidemarkError {
  if (err instanceof TidemarkError) return err;
  const w = wrapPgError(err, what, context);
  const code = w.retriable ? 'REWIND_RETRY' : sqlStateOf(err) === '25006' ? 'REWIND_READ_ONLY' : 'REWIND_FAILED';
  return new TidemarkError(w.message, { code, retriable: w.retriable, cause: err, context: w.context });
}

/** The connection broke without an answer from the server: a COMMIT in flight may or may not have happened. */
export function isOutcomeUnknownPg(err: unknown): boolean {
  return sqlStateOf(err) === undefined && classifyPgError(err).code === 'PG_CONNECT';
}

/**
 * The applier's error codes over the one MySQL classification (mysql/errors.ts): a retriable error is
 * APPLY_RETRY (reconnect and replay), a read-only replica TARGET_READ_ONLY (waited for), a duplicate key
 * APPLY_DIVERGED, anything else APPLY_FAILED. Also which DDL errors mean "this DDL already ran" (used only for the
 * one DDL whose outcome is unknown after a crash, see README.md), and heldError: TARGET_HELD for a target that
 * rewind/forward/undo hold or moved.
 */
import { type ErrorContext, TidemarkError } from '../../core/errors.ts';
import { DEFAULT_CODES, type ErrorCodes, serverFields, wrapMysqlError } from '../../mysql/errors.ts';
import { redactServerMessage } from '../../mysql/accounts.ts';

/** Apply's codes: the ones sessions have always reported (mysql/errors.ts DEFAULT_CODES). */
export const APPLY_CODES: ErrorCodes = DEFAULT_CODES;

/** Errors of a DDL statement that mean its effect is already there. */
export const DDL_ALREADY_DONE_ERRNO: ReadonlySet<number> = new Set([
  1007, // can't create database; database exists
  1008, // can't drop database; database doesn't exist
  1050, // table/view already exists
  1051, // unknown table (DROP)
  1054, // unknown column (RENAME COLUMN / CHANGE repeated)
  1060, // duplicate column name
  1061, // duplicate key name
  1068, // multiple primary key defined
  1091, // can't DROP column/key; check that it exists
  1146, // table doesn't exist (RENAME TABLE repeated)
  1304, // procedure/function already exists
  1305, // procedure/function does not exist
  1359, // trigger already exists
  1360, // trigger does not exist
  1537, // event already exists
  1539, // unknown event
  1141, // no such grant (REVOKE repeated)
  1396, // CREATE/DROP/RENAME USER, CREATE/DROP ROLE failed: the account is already there / already gone
  1826, // duplicate foreign key constraint name
  4091, // unknown SEQUENCE (DROP/ALTER SEQUENCE repeated)
  4092, // unknown VIEW (DROP VIEW repeated)
]);

export function isDdlAlreadyDone(err: unknown): boolean {
  const errno = serverFields(err).errno;
  return errno !== undefined && DDL_ALREADY_DONE_ERRNO.has(errno);
}

/**
 * The server's message of a failed account statement may quote it ("near 'IDENTIFIED BY …'"): redacted in place
 * (message and sqlMessage) before the error reaches a log line or a status.
 */
export function redactAccountError(err: unknown): void {
  if (!err || typeof err !== 'object') return;
  const e = err as { message?: unknown; sqlMessage?: unknown };
  if (typeof e.message === 'string') e.message = redactServerMessage(e.message);
  if (typeof e.sqlMessage === 'string') e.sqlMessage = redactServerMessage(e.sqlMessage);
}

/**
 * Wraps a driver error in a TidemarkError with apply's codes: retriable when a reconnect may cure it; the
 * server's errno, SQLSTATE and message (never the statement text, which holds data) are kept in context.
 */
export function wrapDbError(err: unknown, what: string, context: ErrorContext = {}): TidemarkError {
  return wrapMysqlError(err, what, APPLY_CODES, context);
}

/** The replica does not hold what the journal says it should: never retriable, a human must look. */
export class DivergenceError extends TidemarkError {
  constructor(message: string, context: ErrorContext) {
    super(message, { code: 'APPLY_DIVERGED', retriable: false, context });
    this.name = 'DivergenceError';
  }
}

/** The server errno of a driver error, or of the driver error a TidemarkError wraps. */
export function errnoOf(err: unknown): number | undefined {
  let e: unknown = err;
  for (let depth = 0; e && depth < 5; depth++) {
    const n = serverFields(e).errno;
    if (n !== undefined) return n;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * The target is held by rewind/forward/undo, or one of them moved its stored position since open(): retriable, so
 * the apply loop re-opens (re-reading the stored position) and waits while a hold is set.
 */
export function heldError(target: string, hold: string | null): TidemarkError {
  const why = hold === null ? 'held or moved by rewind/forward/undo since it was opened' : `held (${hold})`;
  return new TidemarkError(`target ${target} is ${why}: apply pauses`, { code: 'TARGET_HELD', retriable: true });
}

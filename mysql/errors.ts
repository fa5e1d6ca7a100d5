/**
 * The one classification of MySQL/MariaDB errors (table in errno.ts) and the one way to wrap a driver error in a
 * TidemarkError. Every stage calls it with its own code family (ErrorCodes): apply APPLY_* (apply/mysql/errors.ts),
 * rewind REWIND_* (rollback/errors.ts); capture builds its own messages from the class (capture/mysql/errors.ts).
 * Pure.
 */
import { type ErrorContext, type ServerErrorFields, TidemarkError, type TidemarkErrorOptions } from '../core/errors.ts';
import { CODE_TABLE, ERRNO_TABLE, type ErrnoEntry, type MysqlErrorClass } from './errno.ts';

export type { MysqlErrorClass } from './errno.ts';

/** MariaDB ER_SLAVE_SAME_ID (mysql2 names 4052 after MySQL's unrelated ER_INVALID_MFA_PLUGIN_SPECIFIED). */
export const ER_SLAVE_SAME_ID = 4052;
export const ER_MASTER_FATAL_ERROR_READING_BINLOG = 1236;
export const ER_TABLE_DEF_CHANGED = 1412;
export const ER_NO_SUCH_TABLE = 1146;

/** The server's fields of a driver error (only those of the right type). */
export function serverFields(err: unknown): ServerErrorFields {
  const e = err as ServerErrorFields | null;
  if (!e || typeof e !== 'object') return {};
  const out: ServerErrorFields = {};
  if (typeof e.code === 'string') out.code = e.code;
  if (typeof e.errno === 'number') out.errno = e.errno;
  if (typeof e.sqlState === 'string') out.sqlState = e.sqlState;
  if (typeof e.sqlMessage === 'string') out.sqlMessage = e.sqlMessage;
  return out;
}

/** The error's own server-side message (never holds a password), else its message. */
export function errorText(err: unknown): string {
  const m = (err as { message?: unknown } | null)?.message;
  return serverFields(err).sqlMessage ?? (typeof m === 'string' ? m : String(err));
}

export interface MysqlErrorInfo extends ServerErrorFields {
  readonly cls: MysqlErrorClass;
  readonly retriable: boolean;
  /** The connection failed while a statement may have run: whether it took effect is unknown. */
  readonly outcomeUnknown: boolean;
}

const OTHER: ErrnoEntry = { cls: 'other', retriable: false };
const GONE: ErrnoEntry = { cls: 'gone', retriable: true };

function entryOf(err: unknown, f: ServerErrorFields): ErrnoEntry {
  const byErrno = f.errno !== undefined ? ERRNO_TABLE.get(f.errno) : undefined;
  if (byErrno && (!byErrno.when || byErrno.when.test(errorText(err)))) return byErrno;
  const byCode = f.code !== undefined ? CODE_TABLE.get(f.code) : undefined;
  if (byCode) return byCode;
  // mysql2 marks errors after which the connection is unusable as fatal (a dropped socket of any kind).
  if ((err as { fatal?: unknown } | null)?.fatal === true) return GONE;
  return OTHER;
}

/**
 * Classifies a driver error (mysql2, a socket, zongji). A TidemarkError keeps its own `retriable`. An error
 * without a server errno that is not a known "the server answered" error has an unknown outcome: nothing says
 * the statement did not run.
 */
export function classifyMysqlError(err: unknown): MysqlErrorInfo {
  const f = serverFields(err);
  const entry = err instanceof TidemarkError ? { cls: 'other' as const, retriable: err.retriable } : entryOf(err, f);
  const outcomeUnknown = entry.cls === 'gone' || (f.errno === undefined && entry.cls === 'other');
  return { ...f, cls: entry.cls, retriable: entry.retriable, outcomeUnknown };
}

/** May a reconnect (and replay) cure this error? Unknown errors: no. */
export function isRetriableDbError(err: unknown): boolean {
  return classifyMysqlError(err).retriable;
}

/**
 * Did the statement's outcome stay unknown (the connection failed), as opposed to the server answering with an
 * error (the statement did not take effect)?
 */
export function isOutcomeUnknown(err: unknown): boolean {
  return classifyMysqlError(err).outcomeUnknown;
}

/** The server refuses writes because it is read-only (`read_only=1`, super_read_only, 1836). */
export function isReadOnlyError(err: unknown): boolean {
  return classifyMysqlError(err).cls === 'read-only';
}

type Code = TidemarkErrorOptions['code'];

/** A stage's error codes for the classes (every class not named gets `retry` or `failed` by its flag). */
export interface ErrorCodes {
  /** A retriable error. */
  readonly retry: Code;
  /** A non-retriable error. */
  readonly failed: Code;
  /** The session was made but its setup did not take effect (mysql/session.ts). */
  readonly session: Code;
  /** Codes for particular classes, overriding `retry` / `failed` (the class's retriable flag stays). */
  readonly byClass?: Partial<Record<MysqlErrorClass, Code>>;
}

/**
 * The codes a session opened without a stage's family reports (status, verify, restore, failover's probes and
 * takeover helpers): those it has always reported, when these sessions were the applier's. Apply's family
 * (apply/mysql/errors.ts) is this one.
 */
export const DEFAULT_CODES: ErrorCodes = {
  retry: 'APPLY_RETRY',
  failed: 'APPLY_FAILED',
  session: 'APPLY_SESSION',
  byClass: { 'read-only': 'TARGET_READ_ONLY', duplicate: 'APPLY_DIVERGED' },
};

/** mysql2 attaches the statement text; it holds row data (and can be megabytes): keep it out of errors and logs. */
export function stripSql<T>(err: T): T {
  if (err && typeof err === 'object' && 'sql' in err) delete (err as { sql?: unknown }).sql;
  return err;
}

/**
 * Wraps a driver error in a TidemarkError of `codes`: retriable per the table; the server's errno, SQLSTATE and
 * message (never the statement text, which holds data) kept in context. A TidemarkError passes through unchanged.
 */
export function wrapMysqlError(
  err: unknown,
  what: string,
  codes: ErrorCodes,
  context: ErrorContext = {},
): TidemarkError {
  if (err instanceof TidemarkError) return err;
  stripSql(err);
  const c = classifyMysqlError(err);
  const code = codes.byClass?.[c.cls] ?? (c.retriable ? codes.retry : codes.failed);
  return new TidemarkError(`${what}: ${errorText(err)}`, {
    code,
    retriable: c.retriable,
    cause: err,
    context: { ...context, errno: c.errno, sqlState: c.sqlState, driverCode: c.code },
  });
}

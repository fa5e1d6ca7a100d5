/**
 * Classifying mysql2 errors for the applier: which ones a reconnect-and-replay can cure, which ones mean the
 * replica diverged, and which DDL errors mean "this DDL already ran" (used only for the one DDL whose outcome is
 * unknown after a crash, see README.md).
 */
import { type ErrorContext, type ServerErrorFields, TidemarkError } from '../../core/errors.ts';

/** Server errnos a fresh attempt may cure. */
const RETRIABLE_ERRNO = new Set([
  1040, // too many connections
  1053, // server shutdown in progress
  1205, // lock wait timeout
  1213, // deadlock
  1317, // query interrupted
  1927, // MariaDB: connection was killed
  2006, // server has gone away
  2013, // lost connection during query
  4031, // MariaDB: disconnected by the server for inactivity
]);

/** Client-side (mysql2 / socket) codes meaning the connection is gone or could not be made. */
const RETRIABLE_CODE = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ER_SERVER_SHUTDOWN',
  'ER_CONNECTION_KILLED',
  'ER_CLIENT_INTERACTION_TIMEOUT',
  'ER_CON_COUNT_ERROR',
]);

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
  1826, // duplicate foreign key constraint name
  4091, // unknown SEQUENCE (DROP/ALTER SEQUENCE repeated)
]);

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

export function isRetriableDbError(err: unknown): boolean {
  if (err instanceof TidemarkError) return err.retriable;
  const f = serverFields(err);
  if (f.errno !== undefined && RETRIABLE_ERRNO.has(f.errno)) return true;
  if (f.code !== undefined && RETRIABLE_CODE.has(f.code)) return true;
  // mysql2 marks errors after which the connection is unusable as fatal.
  return (err as { fatal?: boolean } | null)?.fatal === true;
}

/** Server errnos that mean the connection went away while a statement ran (its outcome is unknown). */
const CONNECTION_GONE_ERRNO = new Set([1053, 1927, 2006, 2013, 4031]);

/**
 * Did the statement's outcome stay unknown (the connection failed), as opposed to the server answering with an
 * error (the statement did not take effect)?
 */
export function isOutcomeUnknown(err: unknown): boolean {
  const f = serverFields(err);
  if (f.errno !== undefined) return CONNECTION_GONE_ERRNO.has(f.errno);
  return true;
}

/**
 * The replica refuses writes because it is read-only (`read_only=1`, errno 1290 ER_OPTION_PREVENTS_STATEMENT naming
 * --read-only; MySQL's super_read_only answers the same; 1836 ER_READ_ONLY_MODE). Retriable: the applier waits and
 * resumes when the replica is writable again (wrapDbError gives it the code TARGET_READ_ONLY).
 */
export function isReadOnlyError(err: unknown): boolean {
  const f = serverFields(err);
  if (f.errno === 1836) return true;
  return f.errno === 1290 && /read[-_]only/i.test(f.sqlMessage ?? (err instanceof Error ? err.message : ''));
}

export function isDdlAlreadyDone(err: unknown): boolean {
  const errno = serverFields(err).errno;
  return errno !== undefined && DDL_ALREADY_DONE_ERRNO.has(errno);
}

/**
 * Wraps a driver error in a TidemarkError: retriable when a reconnect may cure it; the server's errno, SQLSTATE
 * and message (never the statement text, which holds data) are kept in context.
 */
export function wrapDbError(err: unknown, what: string, context: ErrorContext = {}): TidemarkError {
  if (err instanceof TidemarkError) return err;
  // mysql2 attaches the statement text; it holds row data (and can be megabytes): keep it out of logs.
  if (err && typeof err === 'object' && 'sql' in err) delete (err as { sql?: unknown }).sql;
  const f = serverFields(err);
  const readOnly = isReadOnlyError(err);
  const retriable = readOnly || isRetriableDbError(err);
  const msg = f.sqlMessage ?? (err instanceof Error ? err.message : String(err));
  const code = readOnly
    ? 'TARGET_READ_ONLY'
    : retriable
      ? 'APPLY_RETRY'
      : f.errno === 1062
        ? 'APPLY_DIVERGED'
        : 'APPLY_FAILED';
  return new TidemarkError(`${what}: ${msg}`, {
    code,
    retriable,
    cause: err,
    context: { ...context, errno: f.errno, sqlState: f.sqlState, driverCode: f.code },
  });
}

/** The replica does not hold what the journal says it should: never retriable, a human must look. */
export class DivergenceError extends TidemarkError {
  constructor(message: string, context: ErrorContext) {
    super(message, { code: 'APPLY_DIVERGED', retriable: false, context });
    this.name = 'DivergenceError';
  }
}

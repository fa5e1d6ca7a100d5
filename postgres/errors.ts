/**
 * The one classification of PostgreSQL errors and the one way to wrap a `pg` driver error (or a socket error under
 * it) in a TidemarkError with a PG_* code and `retriable`. Pure. Rules:
 *   - retriable only when waiting and trying again can succeed without a human: the network (SQLSTATE class 08,
 *     ECONNREFUSED, ECONNRESET, …, `pg`'s "Connection terminated"), a server shutting down, crashed or starting
 *     (57P01-57P03), an idle-session timeout (57P05), too many connections or out of memory (53300, 53200, 53000),
 *     serialization failures, deadlocks, lock timeouts (40001, 40P01, 55P03);
 *   - never retriable: credentials (class 28), privileges (42501), disk full and configuration limits (53100,
 *     53400), a dropped database (57P04) and anything unknown.
 * The server's fields (SQLSTATE, detail, hint, schema, table, column, constraint) are kept in `context`; `pg`
 * error messages never hold a password.
 */
import { type ErrorCode, type ErrorContext, TidemarkError } from '../core/errors.ts';

export interface PgErrorInfo {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  /** The SQLSTATE (five characters), when the server answered. */
  readonly sqlState?: string;
}

/** Socket and DNS error codes under which the server was not reached or the connection broke. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EAI_AGAIN',
  'ECONNABORTED',
]);

/** Messages `pg` gives its own connection failures (no SQLSTATE, no errno). */
const PG_DRIVER_GONE = /^(Connection terminated|Client has encountered a connection error|timeout expired)/;

const BY_STATE: ReadonlyMap<string, Omit<PgErrorInfo, 'sqlState'>> = new Map([
  ['57P01', { code: 'PG_CONNECT', retriable: true }], // admin_shutdown
  ['57P02', { code: 'PG_CONNECT', retriable: true }], // crash_shutdown
  ['57P03', { code: 'PG_CONNECT', retriable: true }], // cannot_connect_now (starting up, recovery)
  ['57P05', { code: 'PG_CONNECT', retriable: true }], // idle_session_timeout
  ['57P04', { code: 'PG_SERVER', retriable: false }], // database_dropped
  ['53000', { code: 'PG_RESOURCES', retriable: true }], // insufficient_resources
  ['53200', { code: 'PG_RESOURCES', retriable: true }], // out_of_memory
  ['53300', { code: 'PG_RESOURCES', retriable: true }], // too_many_connections
  ['53100', { code: 'PG_RESOURCES', retriable: false }], // disk_full: a human must free space
  ['53400', { code: 'PG_RESOURCES', retriable: false }], // configuration_limit_exceeded
  ['40001', { code: 'PG_TRANSIENT', retriable: true }], // serialization_failure
  ['40P01', { code: 'PG_TRANSIENT', retriable: true }], // deadlock_detected
  ['55P03', { code: 'PG_TRANSIENT', retriable: true }], // lock_not_available
  ['42501', { code: 'PG_PRIVILEGE', retriable: false }], // insufficient_privilege
]);

/**
 * The SQLSTATE of a server error: a `pg` DatabaseError carries `severity` and a five-character `code` (a socket
 * error's code such as EPIPE has five letters too, but no severity). Else undefined.
 */
export function sqlStateOf(err: unknown): string | undefined {
  const e = err as { code?: unknown; severity?: unknown } | null;
  if (typeof e?.severity !== 'string') return undefined;
  return typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined;
}

/** Classifies a `pg` error, a socket error or anything else (a TidemarkError keeps its own code). */
export function classifyPgError(err: unknown): PgErrorInfo {
  if (err instanceof TidemarkError) return { code: err.code, retriable: err.retriable };
  const state = sqlStateOf(err);
  if (state !== undefined) {
    const known = BY_STATE.get(state);
    if (known) return { ...known, sqlState: state };
    if (state.startsWith('08')) return { code: 'PG_CONNECT', retriable: true, sqlState: state };
    if (state.startsWith('28')) return { code: 'PG_AUTH', retriable: false, sqlState: state };
    return { code: 'PG_SERVER', retriable: false, sqlState: state };
  }
  const errno = (err as { code?: unknown } | null)?.code;
  if (typeof errno === 'string' && NETWORK_CODES.has(errno)) return { code: 'PG_CONNECT', retriable: true };
  const msg = (err as { message?: unknown } | null)?.message;
  if (typeof msg === 'string' && PG_DRIVER_GONE.test(msg)) return { code: 'PG_CONNECT', retriable: true };
  return { code: 'PG_SERVER', retriable: false };
}

/** The server's own fields of a `pg` DatabaseError that help a DBA (strings only). */
function serverContext(err: unknown): ErrorContext {
  const out: ErrorContext = {};
  const e = err as Record<string, unknown> | null;
  if (!e || typeof e !== 'object') return out;
  for (const k of ['detail', 'hint', 'schema', 'table', 'column', 'constraint', 'routine']) {
    if (typeof e[k] === 'string') out[k] = e[k];
  }
  return out;
}

/**
 * Wraps `err` as "WHAT: <server message> (SQLSTATE x)" with the classified code, `retriable`, `cause` and
 * context (the caller's, e.g. host/port/user, plus the server's fields). A TidemarkError passes through.
 */
export function wrapPgError(err: unknown, what: string, context: ErrorContext = {}): TidemarkError {
  if (err instanceof TidemarkError) return err;
  const info = classifyPgError(err);
  const m = (err as { message?: unknown } | null)?.message;
  const text = typeof m === 'string' ? m : String(err);
  const state = info.sqlState !== undefined ? ` (SQLSTATE ${info.sqlState})` : '';
  return new TidemarkError(`${what}: ${text}${state}`, {
    code: info.code,
    retriable: info.retriable,
    cause: err,
    context: { ...context, ...serverContext(err), ...(info.sqlState ? { sqlState: info.sqlState } : {}) },
  });
}

/**
 * Maps mysql2 / server errors from the source to TidemarkErrors with a stable code, a retriable flag and a
 * message that names host:port and user (never the password) and what to do. Pure.
 *
 *   CONNECT        refused, timed out, reset, lost, server shutting down, too many connections   retriable
 *   AUTH           access denied for the user (wrong password, unknown user/host)                 not retriable
 *   PRIVILEGE      a statement needs a privilege the user lacks                                   not retriable
 *   BINLOG_PURGED  the binlog position to read from is gone (1236)                                not retriable
 *   SOURCE         any other server error                                                         not retriable
 */
import { TidemarkError, type ServerErrorFields } from '../../core/errors.ts';
import { formatPosition, type MysqlPosition } from '../../record/position.ts';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
  readonly user: string;
}

const RETRIABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ERR_STREAM_WRITE_AFTER_END',
]);

/** Server error numbers worth retrying: shutdown, lost/killed connection, overload, lock contention. */
const RETRIABLE_ERRNOS = new Set([1040, 1053, 1077, 1152, 1159, 1161, 1205, 1213, 1317, 1927, 2002, 2003, 2006, 2013]);
const AUTH_ERRNOS = new Set([1045, 1698, 1130, 1251, 1862]);
const PRIVILEGE_ERRNOS = new Set([1044, 1142, 1143, 1227, 1370]);
export const ER_MASTER_FATAL_ERROR_READING_BINLOG = 1236;
/** MariaDB ER_SLAVE_SAME_ID (mysql2 names 4052 after MySQL's unrelated ER_INVALID_MFA_PLUGIN_SPECIFIED). */
export const ER_SLAVE_SAME_ID = 4052;
export const ER_TABLE_DEF_CHANGED = 1412;

function fields(err: unknown): ServerErrorFields & { message: string } {
  const e = (err ?? {}) as ServerErrorFields & { message?: unknown };
  return {
    code: typeof e.code === 'string' ? e.code : undefined,
    errno: typeof e.errno === 'number' ? e.errno : undefined,
    sqlState: typeof e.sqlState === 'string' ? e.sqlState : undefined,
    sqlMessage: typeof e.sqlMessage === 'string' ? e.sqlMessage : undefined,
    message: typeof e.message === 'string' ? e.message : String(err),
  };
}

function where(ep: Endpoint): string {
  return `${ep.host}:${ep.port}`;
}

/** The error's own server-side message, which never holds a password. */
function detail(f: ReturnType<typeof fields>): string {
  return f.sqlMessage ?? f.message;
}

/**
 * Wraps an error from a source connection or query. `what` says what was being done ("connect", "read the
 * binlog", "baseline of db.t"). TidemarkErrors pass through unchanged.
 */
export function sourceError(err: unknown, ep: Endpoint, what: string): TidemarkError {
  if (err instanceof TidemarkError) return err;
  const f = fields(err);
  const context = { host: ep.host, port: ep.port, user: ep.user, code: f.code, errno: f.errno, sqlState: f.sqlState };
  if (f.errno !== undefined && AUTH_ERRNOS.has(f.errno)) {
    return new TidemarkError(
      `${what}: access denied for user ${ep.user} at ${where(ep)} (${detail(f)}): check source.user and its ` +
        'password (source.password, password_env or password_file) and that the account may connect from this host',
      { code: 'AUTH', retriable: false, cause: err, context },
    );
  }
  if (f.errno !== undefined && PRIVILEGE_ERRNOS.has(f.errno)) {
    return new TidemarkError(`${what}: user ${ep.user} lacks a privilege on ${where(ep)}: ${detail(f)}`, {
      code: 'PRIVILEGE',
      retriable: false,
      cause: err,
      context,
    });
  }
  if (f.errno === ER_SLAVE_SAME_ID && /server_id/i.test(detail(f))) {
    // Usually tidemark's own previous dump connection, still being torn down on the server after a cut.
    return new TidemarkError(
      `${what}: ${where(ep)} already has a replica connected with this server_id (${detail(f)}); if this is ` +
        'not tidemark reconnecting, set source.server_id to an id no other replica uses',
      { code: 'CONNECT', retriable: true, cause: err, context },
    );
  }
  if (
    (f.code !== undefined && RETRIABLE_CODES.has(f.code)) ||
    (f.errno !== undefined && RETRIABLE_ERRNOS.has(f.errno))
  ) {
    return new TidemarkError(`${what}: cannot reach the source at ${where(ep)} as ${ep.user}: ${detail(f)}`, {
      code: 'CONNECT',
      retriable: true,
      cause: err,
      context,
    });
  }
  return new TidemarkError(`${what}: source ${where(ep)} failed: ${detail(f)}`, {
    code: 'SOURCE',
    retriable: false,
    cause: err,
    context,
  });
}

/** Is this the server's "cannot read the binlog from there" (purged file, impossible position)? */
export function isBinlogUnavailable(err: unknown): boolean {
  return fields(err).errno === ER_MASTER_FATAL_ERROR_READING_BINLOG;
}

export function binlogPurgedError(err: unknown, ep: Endpoint, from: MysqlPosition): TidemarkError {
  const f = fields(err);
  return new TidemarkError(
    `the source ${where(ep)} can no longer serve the binlog from ${formatPosition(from)} (${detail(f)}); the ` +
      'changes since then are lost to capture, so a new baseline is needed: restart capture with --rebaseline ' +
      '(re-copies every included table at a new snapshot; appliers then reload those tables), and raise the ' +
      "source's binlog retention (binlog_expire_logs_seconds / expire_logs_days) above the longest capture outage",
    {
      code: 'BINLOG_PURGED',
      retriable: false,
      cause: err,
      context: { host: ep.host, port: ep.port, file: from.binlog.file, offset: from.binlog.offset },
    },
  );
}

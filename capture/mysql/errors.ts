/**
 * Maps mysql2 / server errors from the source to TidemarkErrors with a stable code, a retriable flag and a
 * message that names host:port and user (never the password) and what to do. The class and the retriable flag
 * come from the one MySQL errno table (mysql/errno.ts); this module only words them for the source. Pure.
 *
 *   CONNECT        refused, timed out, reset, lost, server shutting down, too many connections   retriable
 *   AUTH           access denied for the user (wrong password, unknown user/host)                 not retriable
 *   PRIVILEGE      a statement needs a privilege the user lacks                                   not retriable
 *   BINLOG_PURGED  the binlog position to read from is gone (1236)                                not retriable
 *   SOURCE         any other server error                                                         not retriable
 */
import { TidemarkError } from '../../core/errors.ts';
import { formatPosition, type MysqlPosition } from '../../record/position.ts';
import {
  classifyMysqlError,
  ER_MASTER_FATAL_ERROR_READING_BINLOG,
  ER_SLAVE_SAME_ID,
  errorText,
  serverFields,
} from '../../mysql/errors.ts';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
  readonly user: string;
}

function where(ep: Endpoint): string {
  return `${ep.host}:${ep.port}`;
}

/**
 * Wraps an error from a source connection or query. `what` says what was being done ("connect", "read the
 * binlog", "baseline of db.t"). TidemarkErrors pass through unchanged.
 */
export function sourceError(err: unknown, ep: Endpoint, what: string): TidemarkError {
  if (err instanceof TidemarkError) return err;
  const c = classifyMysqlError(err);
  const detail = errorText(err);
  const context = { host: ep.host, port: ep.port, user: ep.user, code: c.code, errno: c.errno, sqlState: c.sqlState };
  if (c.cls === 'auth') {
    return new TidemarkError(
      `${what}: access denied for user ${ep.user} at ${where(ep)} (${detail}): check source.user and its ` +
        'password (source.password, password_env or password_file) and that the account may connect from this host',
      { code: 'AUTH', retriable: false, cause: err, context },
    );
  }
  if (c.cls === 'access') {
    return new TidemarkError(`${what}: user ${ep.user} lacks a privilege on ${where(ep)}: ${detail}`, {
      code: 'PRIVILEGE',
      retriable: false,
      cause: err,
      context,
    });
  }
  if (c.errno === ER_SLAVE_SAME_ID && c.cls === 'connect') {
    // Usually tidemark's own previous dump connection, still being torn down on the server after a cut.
    return new TidemarkError(
      `${what}: ${where(ep)} already has a replica connected with this server_id (${detail}); if this is ` +
        'not tidemark reconnecting, set source.server_id to an id no other replica uses',
      { code: 'CONNECT', retriable: true, cause: err, context },
    );
  }
  // Capture never writes to the source, so a read-only refusal is a statement problem, not one to wait out.
  if (c.retriable && c.cls !== 'read-only') {
    return new TidemarkError(`${what}: cannot reach the source at ${where(ep)} as ${ep.user}: ${detail}`, {
      code: 'CONNECT',
      retriable: true,
      cause: err,
      context,
    });
  }
  return new TidemarkError(`${what}: source ${where(ep)} failed: ${detail}`, {
    code: 'SOURCE',
    retriable: false,
    cause: err,
    context,
  });
}

/** Is this the server's "cannot read the binlog from there" (purged file, impossible position)? */
export function isBinlogUnavailable(err: unknown): boolean {
  return serverFields(err).errno === ER_MASTER_FATAL_ERROR_READING_BINLOG;
}

export function binlogPurgedError(err: unknown, ep: Endpoint, from: MysqlPosition): TidemarkError {
  return new TidemarkError(
    `the source ${where(ep)} can no longer serve the binlog from ${formatPosition(from)} (${errorText(err)}); the ` +
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

/**
 * The one way tidemark opens a MySQL/MariaDB connection (capture, apply, verify, rewind, failover, the probes).
 * Every connection uses the same value options, so that mysql2 results and zongji binlog rows come out in the
 * forms capture/mysql/values.ts and apply/mysql/values.ts expect:
 *   supportBigNumbers + bigNumberStrings  64-bit integers exact (number when safe, else string)
 *   decimalNumbers: false                 DECIMAL as exact strings
 *   dateStrings: true, timezone 'Z'       DATE/DATETIME/TIMESTAMP as text with all fractional digits, no Date
 *   jsonStrings: true                     JSON as text
 * and the endpoint's connect timeout and TLS files (tlsOptions). Three shapes:
 *   openSession          a mysql2 promise connection with the statement session below (apply, verify, rewind,
 *                        failover, status, the preflight)
 *   openStreamingSession the raw connection and its promise face, time_zone only (capture: baseline streams
 *                        result sets, the source watch, the position read)
 *   connectionOptions    the options alone, for zongji's replication connection and the heartbeat probe
 *
 * The statement session (openSession):
 *
 *   time_zone '+00:00'        TIMESTAMP values travel as UTC text
 *   utf8mb4                   string literals are utf8mb4 (checked after connecting)
 *   sql_mode                  exactly NO_AUTO_VALUE_ON_ZERO (an explicit 0 in an AUTO_INCREMENT column stays 0),
 *                             STRICT_ALL_TABLES (a value that does not fit is an error, never silently truncated),
 *                             NO_ENGINE_SUBSTITUTION; notably without NO_BACKSLASH_ESCAPES (sql.ts escapes with
 *                             backslashes) and without NO_ZERO_DATE/NO_ZERO_IN_DATE (the source may hold zero dates)
 *   foreign_key_checks 0      (apply only) changes arrive in source commit order but per table, tables may be
 *                             filtered out, and the source may itself have run with checks off. The replica mirrors
 *                             the source's outcome, not its constraints — except cascades: InnoDB does not binlog
 *                             what ON DELETE/UPDATE CASCADE or SET NULL changed, so the applier runs the statements
 *                             of such parents with checks on (apply/mysql/fk.ts, its README.md "Foreign keys")
 *   @tidemark_apply = 1       (apply only: apply, rewind, skip) the replica's triggers are created guarded and do not
 *                             fire in such a session: the journal already holds their effects as rows
 *                             (mysql/objects.ts guardTrigger; apply/mysql/README.md "Schema objects")
 *   system_versioning_alter_history KEEP  (apply only, MariaDB) an ALTER of a system-versioned table that the
 *                             source ran (it needed KEEP there too) keeps the history on the replica as well
 *
 * Client flags: FOUND_ROWS (UPDATE reports matched rows, not changed rows, so a no-op update of an existing row
 * still counts as 1), no LOCAL INFILE (except an apply session that asks for it: localInfile). Result options keep values exact: big integers and DECIMAL as strings,
 * dates as strings.
 */
import mysql from 'mysql2';
import mysqlPromise from 'mysql2/promise';
import { TidemarkError } from '../core/errors.ts';
import { readTlsFiles, type TlsFiles } from '../core/tls-files.ts';
import { DEFAULT_CODES, type ErrorCodes, wrapMysqlError } from './errors.ts';
import { APPLY_MARK } from './objects.ts';

export const SQL_MODE = 'NO_AUTO_VALUE_ON_ZERO,STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION';

/** The endpoint fields of a resolved config endpoint (source, target, account); the password non-enumerable. */
export interface MysqlEndpoint {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password?: string | undefined;
  readonly connect_timeout_ms?: number | undefined;
  readonly tls?: TlsFiles | undefined;
}

export interface ClientOptions {
  /** UPDATE reports matched rows, not changed rows (statement sessions). */
  readonly foundRows?: boolean;
  /** Allow several statements per query (apply batches per-row statements this way). */
  readonly multipleStatements?: boolean;
  /** Refuse LOAD DATA LOCAL (statement sessions, probes). */
  readonly noLocalFiles?: boolean;
  /** TCP keep-alive after 10 s idle (capture's long-lived source connections). */
  readonly keepAlive?: boolean;
  /** Overrides the endpoint's connect_timeout_ms (default 10 s). */
  readonly connectTimeoutMs?: number;
  /** How config errors name the endpoint's tls keys ("source.tls"); default "tls". */
  readonly tlsKey?: string;
}

/** The TLS options of an endpoint (files read now); undefined without `tls`. */
export function tlsOptions(ep: MysqlEndpoint, tlsKey = 'tls'): mysql.SslOptions | undefined {
  return readTlsFiles(ep.tls, tlsKey);
}

/** mysql2 connection options for an endpoint (see the file comment). The result holds the password: never log it. */
export function connectionOptions(ep: MysqlEndpoint, o: ClientOptions = {}): mysql.ConnectionOptions {
  const ssl = tlsOptions(ep, o.tlsKey);
  const flags = [...(o.foundRows ? ['FOUND_ROWS'] : []), ...(o.noLocalFiles ? ['-LOCAL_FILES'] : [])];
  return {
    host: ep.host,
    port: ep.port,
    user: ep.user,
    ...(ep.password !== undefined ? { password: ep.password } : {}),
    ...(ssl ? { ssl } : {}),
    connectTimeout: o.connectTimeoutMs ?? ep.connect_timeout_ms ?? 10_000,
    charset: 'UTF8MB4_GENERAL_CI',
    timezone: 'Z',
    ...(flags.length > 0 ? { flags } : {}),
    ...(o.multipleStatements !== undefined ? { multipleStatements: o.multipleStatements } : {}),
    supportBigNumbers: true,
    bigNumberStrings: true,
    decimalNumbers: false,
    dateStrings: true,
    jsonStrings: true,
    ...(o.keepAlive ? { enableKeepAlive: true, keepAliveInitialDelay: 10_000 } : {}),
  };
}

export interface SessionOptions {
  /** Apply sessions turn foreign key checks off and keep versioning history; others leave them alone. */
  readonly apply: boolean;
  /** Allow several statements per query (apply batches per-row statements this way). */
  readonly multipleStatements?: boolean;
  /** The error codes of the stage opening it (default: DEFAULT_CODES, mysql/errors.ts). */
  readonly codes?: ErrorCodes;
  /**
   * Allow LOAD DATA LOCAL (apply's bulk inserts, apply/mysql/load-data.ts). The client then serves a statement's
   * local file only from the stream its query passes (mysql2's per-query infileStreamFactory): it never reads a
   * file, whatever the server asks for. Default false.
   */
  readonly localInfile?: boolean;
}

/**
 * Query text as given when a query has no values. mysql2 otherwise scans every query for `?` placeholders even
 * without values (sql-escaper's format): each 2 MiB batch of apply or rewind was scanned in full, 0.47 s of the
 * apply CPU of the 400k-row bulk benchmark. tidemark writes its values as literals (sql.ts); a query with values
 * is formatted by mysql2's escaper exactly as mysql2 would (positional placeholders, no object stringifying).
 */
function queryFormat(sql: string, values: unknown): string {
  if (values === undefined || values === null || (Array.isArray(values) && values.length === 0)) return sql;
  return mysqlPromise.format(sql, values as never, false, 'Z');
}

/** Connects and sets the session up; every failure is a TidemarkError (retriable when the network is at fault). */
export async function openSession(ep: MysqlEndpoint, opts: SessionOptions): Promise<mysqlPromise.Connection> {
  const codes = opts.codes ?? DEFAULT_CODES;
  const where = { host: ep.host, port: ep.port, user: ep.user };
  let conn: mysqlPromise.Connection;
  try {
    conn = await mysqlPromise.createConnection({
      ...connectionOptions(ep, {
        foundRows: true,
        noLocalFiles: opts.localInfile !== true,
        multipleStatements: opts.multipleStatements ?? false,
      }),
      queryFormat,
      // mysql2's promise API otherwise captures a stack trace for every query, to graft onto its error (2.6 % of a
      // standby's main thread applying 2k tx/s, issue #15); a failure here is wrapped with its statement's context.
      trace: false,
    });
  } catch (err) {
    throw wrapMysqlError(err, `cannot connect to ${ep.host}:${ep.port} as ${ep.user}`, codes, where);
  }
  // A socket error while idle must not crash the process: it surfaces on the next query instead.
  conn.on('error', () => {});
  try {
    await conn.query(
      `SET NAMES utf8mb4, time_zone = '+00:00', sql_mode = '${SQL_MODE}'` +
        (opts.apply ? `, foreign_key_checks = 0, ${APPLY_MARK} = 1` : ''),
    );
    const [rows] = await conn.query<mysqlPromise.RowDataPacket[]>(
      'SELECT @@character_set_connection AS cs, @@sql_mode AS mode, @@time_zone AS tz',
    );
    const r = rows[0];
    const ok = r?.['cs'] === 'utf8mb4' && r['tz'] === '+00:00' && !String(r['mode']).includes('NO_BACKSLASH_ESCAPES');
    if (!ok) {
      throw new TidemarkError('session setup did not take effect (charset, time zone or sql_mode)', {
        code: codes.session,
        context: { ...where, charset: String(r?.['cs']), timeZone: String(r?.['tz']) },
      });
    }
  } catch (err) {
    conn.destroy();
    throw wrapMysqlError(err, `session setup on ${ep.host}:${ep.port}`, codes, where);
  }
  if (opts.apply) {
    // MariaDB 10.3+ only; elsewhere the variable does not exist (1193) and there is no versioning to keep.
    await conn.query('SET SESSION system_versioning_alter_history = KEEP').catch(() => {});
  }
  return conn;
}

/** A connection as both APIs: `promise` for queries, `raw` for streaming result sets. */
export interface StreamingSession {
  readonly raw: mysql.Connection;
  readonly promise: mysqlPromise.Connection;
  close(): Promise<void>;
}

/**
 * Opens a connection with time_zone '+00:00' and keep-alive, for streaming reads. `wrap` turns a failure into
 * the stage's error (capture: capture/mysql/errors.ts sourceError).
 */
export async function openStreamingSession(
  ep: MysqlEndpoint,
  o: { readonly tlsKey?: string; readonly wrap: (err: unknown) => Error },
): Promise<StreamingSession> {
  const raw = mysql.createConnection(
    connectionOptions(ep, { keepAlive: true, ...(o.tlsKey ? { tlsKey: o.tlsKey } : {}) }),
  );
  const promise = raw.promise();
  // Errors on an idle connection surface on its next query; do not let them crash the process meanwhile.
  raw.on('error', () => {});
  try {
    await promise.connect();
    await promise.query("SET time_zone = '+00:00'");
  } catch (err) {
    raw.destroy();
    throw o.wrap(err);
  }
  return {
    raw,
    promise,
    async close() {
      try {
        await promise.end();
      } catch {
        raw.destroy();
      }
    },
  };
}

/** Server family from VERSION(). */
export async function serverFlavor(conn: mysqlPromise.Connection): Promise<'mariadb' | 'mysql'> {
  const [rows] = await conn.query<mysqlPromise.RowDataPacket[]>('SELECT VERSION() AS v');
  return /mariadb/i.test(String(rows[0]?.['v'] ?? '')) ? 'mariadb' : 'mysql';
}

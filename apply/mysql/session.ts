/**
 * Opening MySQL/MariaDB connections for apply and verify with the session every tidemark statement assumes:
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
 *                             of such parents with checks on (fk.ts, README.md "Foreign keys")
 *   system_versioning_alter_history KEEP  (apply only, MariaDB) an ALTER of a system-versioned table that the
 *                             source ran (it needed KEEP there too) keeps the history on the replica as well
 *
 * Client flags: FOUND_ROWS (UPDATE reports matched rows, not changed rows, so a no-op update of an existing row
 * still counts as 1), no LOCAL INFILE. Result options keep values exact: big integers and DECIMAL as strings,
 * dates as strings.
 */
import { readFileSync } from 'node:fs';
import mysql from 'mysql2/promise';
import { TidemarkError } from '../../core/errors.ts';
import { wrapDbError } from './errors.ts';

export const SQL_MODE = 'NO_AUTO_VALUE_ON_ZERO,STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION';

/** The endpoint fields of a resolved config endpoint (source or target). */
export interface MysqlEndpoint {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password?: string | undefined;
  readonly connect_timeout_ms?: number | undefined;
  readonly tls?:
    | {
        readonly ca_file?: string | undefined;
        readonly cert_file?: string | undefined;
        readonly key_file?: string | undefined;
        readonly reject_unauthorized?: boolean | undefined;
      }
    | undefined;
}

export interface SessionOptions {
  /** Apply sessions turn foreign key checks off; verify sessions leave them alone. */
  readonly apply: boolean;
  /** Allow several statements per query (apply batches per-row statements this way). */
  readonly multipleStatements?: boolean;
}

/** The TLS options of an endpoint (files read now); undefined without `tls`. */
export function tlsOptions(ep: MysqlEndpoint): mysql.SslOptions | undefined {
  const t = ep.tls;
  if (!t) return undefined;
  const read = (f: string | undefined, what: string): string | undefined => {
    if (f === undefined) return undefined;
    try {
      return readFileSync(f, 'utf8');
    } catch (err) {
      throw new TidemarkError(`cannot read TLS ${what} file ${f}`, {
        code: 'CONFIG',
        cause: err,
        context: { file: f },
      });
    }
  };
  const out: mysql.SslOptions = { rejectUnauthorized: t.reject_unauthorized ?? true };
  const ca = read(t.ca_file, 'CA');
  const cert = read(t.cert_file, 'certificate');
  const key = read(t.key_file, 'key');
  if (ca !== undefined) out.ca = ca;
  if (cert !== undefined) out.cert = cert;
  if (key !== undefined) out.key = key;
  return out;
}

/** Connects and sets the session up; every failure is a TidemarkError (retriable when the network is at fault). */
export async function openSession(ep: MysqlEndpoint, opts: SessionOptions): Promise<mysql.Connection> {
  const where = { host: ep.host, port: ep.port, user: ep.user };
  let conn: mysql.Connection;
  try {
    const ssl = tlsOptions(ep);
    conn = await mysql.createConnection({
      host: ep.host,
      port: ep.port,
      user: ep.user,
      ...(ep.password !== undefined ? { password: ep.password } : {}),
      ...(ssl ? { ssl } : {}),
      connectTimeout: ep.connect_timeout_ms ?? 10_000,
      charset: 'UTF8MB4_GENERAL_CI',
      timezone: 'Z',
      flags: ['FOUND_ROWS', '-LOCAL_FILES'],
      multipleStatements: opts.multipleStatements ?? false,
      supportBigNumbers: true,
      bigNumberStrings: true,
      decimalNumbers: false,
      dateStrings: true,
      jsonStrings: true,
    });
  } catch (err) {
    throw wrapDbError(err, `cannot connect to ${ep.host}:${ep.port} as ${ep.user}`, where);
  }
  // A socket error while idle must not crash the process: it surfaces on the next query instead.
  conn.on('error', () => {});
  try {
    await conn.query(
      `SET NAMES utf8mb4, time_zone = '+00:00', sql_mode = '${SQL_MODE}'` +
        (opts.apply ? ', foreign_key_checks = 0' : ''),
    );
    const [rows] = await conn.query<mysql.RowDataPacket[]>(
      'SELECT @@character_set_connection AS cs, @@sql_mode AS mode, @@time_zone AS tz',
    );
    const r = rows[0];
    const ok = r?.['cs'] === 'utf8mb4' && r['tz'] === '+00:00' && !String(r['mode']).includes('NO_BACKSLASH_ESCAPES');
    if (!ok) {
      throw new TidemarkError('session setup did not take effect (charset, time zone or sql_mode)', {
        code: 'APPLY_SESSION',
        context: { ...where, charset: String(r?.['cs']), timeZone: String(r?.['tz']) },
      });
    }
  } catch (err) {
    conn.destroy();
    throw wrapDbError(err, `session setup on ${ep.host}:${ep.port}`, where);
  }
  if (opts.apply) {
    // MariaDB 10.3+ only; elsewhere the variable does not exist (1193) and there is no versioning to keep.
    await conn.query('SET SESSION system_versioning_alter_history = KEEP').catch(() => {});
  }
  return conn;
}

/** Server family from VERSION(). */
export async function serverFlavor(conn: mysql.Connection): Promise<'mariadb' | 'mysql'> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT VERSION() AS v');
  return /mariadb/i.test(String(rows[0]?.['v'] ?? '')) ? 'mariadb' : 'mysql';
}

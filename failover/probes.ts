/**
 * The probes of the takeover monitor (issue #5), each bounded in time: whatever the peer does (refuses, accepts
 * and never answers, answers half a handshake), a probe settles within its timeout and leaves no socket behind.
 *
 *   heartbeat  a WRITE on the primary: `INSERT … ON DUPLICATE KEY UPDATE` of this writer's row in the heartbeat
 *              table (schema and table created when missing, checked once per process and server). A server
 *              that answers but does not take writes (read_only: fenced, or a demoted primary) is a failure, also
 *              for an account whose privileges would let it write through read_only: the probe reads
 *              @@global.read_only first and then does not write at all.
 *   tcp        a TCP connect to "host:port" (an application port, a proxy…).
 *
 *   CREATE TABLE IF NOT EXISTS `schema`.`table` (writer VARCHAR(64) PRIMARY KEY, ts DATETIME(6) NOT NULL,
 *                                                 seq BIGINT UNSIGNED NOT NULL)
 *   ts: the primary's NOW(6) in UTC (session time_zone +00:00); seq: this writer's count of heartbeats.
 *
 * The account needs INSERT and UPDATE on the table, SELECT on it (seq = seq + 1 reads it), and CREATE on its
 * schema while the table does not exist yet. Errors never carry the password (mysql2's messages do not; the
 * probe masks it anyway, a second line of defence).
 */
import { connect as netConnect } from 'node:net';
import { performance } from 'node:perf_hooks';
import mysql from 'mysql2';
import { ER_NO_SUCH_TABLE, isReadOnlyError, serverFields } from '../mysql/errors.ts';
import { connectionOptions, type MysqlEndpoint } from '../mysql/session.ts';
import { quoteIdent } from '../mysql/sql.ts';
import { TidemarkError } from '../core/errors.ts';

export type ProbeResult =
  | {
      readonly ok: true;
      readonly latencyMs: number;
      /** The primary's clock when the heartbeat was written (µs since the epoch), as stored in `ts`. */
      readonly primaryTimeUs?: number;
    }
  | { readonly ok: false; readonly error: string };

export interface HeartbeatOptions {
  /** "schema.table". */
  readonly table: string;
  /** Who writes (the row's key): a site name. */
  readonly writer: string;
  /** The whole probe (connect, checks, write) is bounded by this. */
  readonly timeoutMs: number;
}

export const READ_ONLY_MESSAGE = 'the primary is read-only (fenced?)';

/** Backtick-quotes an identifier (doubling backticks inside): the one MySQL layer's, also for the switchover. */
export { quoteIdent };

/**
 * The heartbeat write: `writer`'s row with timestamp `tsSql` (an SQL expression), its seq counting writes. Also
 * the switchover's marker (switchover in `tidemark run`). One `?`: the writer.
 */
export function heartbeatUpsertSql(t: { schema: string; table: string }, tsSql: string): string {
  return (
    `INSERT INTO ${quoteIdent(t.schema)}.${quoteIdent(t.table)} (writer, ts, seq) VALUES (?, ${tsSql}, 1) ` +
    'ON DUPLICATE KEY UPDATE ts = VALUES(ts), seq = seq + 1'
  );
}

/** "schema.table" → its two parts; throws a CONFIG error naming the expected form. */
export function splitTable(table: string): { schema: string; table: string } {
  const dot = table.indexOf('.');
  const schema = table.slice(0, dot);
  const name = table.slice(dot + 1);
  if (dot <= 0 || name === '' || name.includes('.') || schema.length > 64 || name.length > 64) {
    throw new TidemarkError(`heartbeat table "${table}" must be "schema.table"`, { code: 'CONFIG' });
  }
  return { schema, table: name };
}

/** "host:port" (IPv6 in brackets) → parts; throws a CONFIG error. `minPort` 0 lets a listener take any port. */
export function splitAddress(address: string, minPort = 1): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  const port = Number(address.slice(i + 1));
  if (i <= 0 || host === '' || !/^\d{1,5}$/.test(address.slice(i + 1)) || port < minPort || port > 65535) {
    throw new TidemarkError(`"${address}" is not a "host:port" address with a port of ${minPort}-65535`, {
      code: 'CONFIG',
    });
  }
  return { host, port };
}

/** Checked (or created) heartbeat tables, per server: "host:port/schema.table". */
const readyTables = new Set<string>();

const elapsed = (t0: number): number => Math.round((performance.now() - t0) * 1000) / 1000;

/** "1767348000.123456" (UNIX_TIMESTAMP of a DATETIME(6)) → µs. */
function unixToUs(s: string): number {
  const [whole = '', frac = ''] = s.split('.');
  return Number(whole) * 1_000_000 + Number(frac.padEnd(6, '0').slice(0, 6));
}

/**
 * Resolves with `work`, or with `onStop`'s value once `timeoutMs` passed or `signal` aborted (after calling it:
 * it destroys what `work` waits on). A late rejection of `work` is swallowed.
 */
export function bounded<T>(
  work: Promise<T>,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  onStop: (why: 'timeout' | 'stopped') => T,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const finish = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', aborted);
    };
    const stop = (why: 'timeout' | 'stopped') => {
      finish();
      resolve(onStop(why));
    };
    const timer = setTimeout(() => stop('timeout'), timeoutMs);
    const aborted = () => stop('stopped');
    if (signal?.aborted) return stop('stopped');
    signal?.addEventListener('abort', aborted, { once: true });
    work.then(
      (v) => {
        finish();
        resolve(v);
      },
      (err: unknown) => {
        finish();
        reject(err);
      },
    );
  });
}

/**
 * The heartbeat write, keeping one connection between probes; a probe that fails or times out destroys it, and
 * the next one connects afresh. Probes must not overlap (the caller awaits each one).
 */
export class HeartbeatProbe {
  private readonly ep: MysqlEndpoint;
  private readonly opts: HeartbeatOptions;
  private readonly schema: string;
  private readonly table: string;
  /** mysql2 options (TLS files read once, here): they hold the password, never log them. */
  private readonly options: mysql.ConnectionOptions;
  private readonly where: string;
  private conn: mysql.Connection | null = null;
  /** Counts probes: a late failure of a timed-out probe must not destroy a newer probe's connection. */
  private gen = 0;

  constructor(ep: MysqlEndpoint, opts: HeartbeatOptions) {
    const { schema, table } = splitTable(opts.table);
    if (opts.writer === '' || opts.writer.length > 64) {
      throw new TidemarkError(`heartbeat writer "${opts.writer}" must be 1-64 characters`, { code: 'CONFIG' });
    }
    this.ep = ep;
    this.opts = opts;
    this.schema = schema;
    this.table = table;
    // A backstop connect timeout: the probe's own bound acts first (and says "no answer within …").
    this.options = connectionOptions(ep, { noLocalFiles: true, connectTimeoutMs: opts.timeoutMs + 1000 });
    this.where = `${ep.host.includes(':') ? `[${ep.host}]` : ep.host}:${ep.port}`;
  }

  async probe(signal?: AbortSignal): Promise<ProbeResult> {
    const t0 = performance.now();
    const gen = ++this.gen;
    const work = this.write().then(
      (primaryTimeUs): ProbeResult => ({ ok: true, latencyMs: elapsed(t0), primaryTimeUs }),
      (err: unknown): ProbeResult => {
        if (gen === this.gen) this.drop();
        return { ok: false, error: this.describe(err) };
      },
    );
    return bounded(work, this.opts.timeoutMs, signal, (why) => {
      this.drop();
      const error =
        why === 'timeout'
          ? `${this.where}: no answer within ${this.opts.timeoutMs} ms`
          : `${this.where}: probe stopped`;
      return { ok: false, error };
    });
  }

  /** Destroys the kept connection (if any). */
  close(): void {
    this.drop();
  }

  private drop(): void {
    const c = this.conn;
    this.conn = null;
    c?.destroy();
  }

  private async connect(): Promise<mysql.Connection> {
    const c = mysql.createConnection(this.options);
    // Owned at once, so a timeout can destroy it mid-handshake.
    this.conn = c;
    // Closed while idle (server restart, wait_timeout, a firewall): forget it, the next probe connects afresh
    // instead of failing on a dead connection. Never an unhandled 'error' event.
    const forget = () => {
      if (this.conn === c) this.conn = null;
    };
    c.on('error', forget);
    c.on('end', forget);
    await new Promise<void>((resolve, reject) => {
      c.once('connect', () => resolve());
      c.once('error', reject);
      c.once('end', () => reject(new Error('connection closed during the handshake')));
    });
    await c.promise().query("SET time_zone = '+00:00'");
    return c;
  }

  /** One heartbeat; resolves with the primary's time written (µs), rejects with the driver's error. */
  private async write(): Promise<number> {
    const c = this.conn ?? (await this.connect());
    const p = c.promise();
    const [rows] = await p.query<mysql.RowDataPacket[]>('SELECT @@global.read_only AS ro, UNIX_TIMESTAMP(NOW(6)) AS t');
    const r = rows[0];
    if (Number(r?.['ro']) !== 0) throw new ReadOnlyError();
    const t = String(r?.['t'] ?? '');
    // A decimal literal: exact to the microsecond, where a bound string would pass through a DOUBLE.
    if (!/^\d{1,12}(\.\d{1,6})?$/.test(t)) throw new Error(`unexpected UNIX_TIMESTAMP(NOW(6)) value "${t}"`);
    const qualified = `${quoteIdent(this.schema)}.${quoteIdent(this.table)}`;
    const key = `${this.where}/${this.schema}.${this.table}`;
    if (!readyTables.has(key)) {
      await this.ensureTable(p, qualified);
      readyTables.add(key);
    }
    try {
      const table = { schema: this.schema, table: this.table };
      await p.query(heartbeatUpsertSql(table, `FROM_UNIXTIME(${t})`), [this.opts.writer]);
    } catch (err) {
      if (serverFields(err).errno === ER_NO_SUCH_TABLE) readyTables.delete(key); // dropped since: create it again next time
      throw err;
    }
    return unixToUs(t);
  }

  private async ensureTable(p: ReturnType<mysql.Connection['promise']>, qualified: string): Promise<void> {
    // Looked up first, so an account without CREATE works once the table exists.
    const [found] = await p.query<mysql.RowDataPacket[]>(
      'SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?',
      [this.schema, this.table],
    );
    if (found.length > 0) return;
    await p.query(`CREATE DATABASE IF NOT EXISTS ${quoteIdent(this.schema)}`);
    await p.query(
      `CREATE TABLE IF NOT EXISTS ${qualified} (writer VARCHAR(64) NOT NULL PRIMARY KEY, ` +
        'ts DATETIME(6) NOT NULL, seq BIGINT UNSIGNED NOT NULL) ENGINE=InnoDB',
    );
  }

  /** One line, naming the server, without the password. */
  private describe(err: unknown): string {
    let msg: string;
    if (err instanceof ReadOnlyError || isReadOnlyError(err)) {
      msg = READ_ONLY_MESSAGE;
    } else {
      const f = serverFields(err);
      if (f.sqlMessage !== undefined) msg = f.errno === undefined ? f.sqlMessage : `${f.sqlMessage} (errno ${f.errno})`;
      else {
        msg = err instanceof Error ? err.message : String(err);
        if (f.code !== undefined && !msg.includes(f.code)) msg += ` (${f.code})`;
      }
    }
    const pw = this.ep.password;
    if (pw) msg = msg.replaceAll(pw, '***');
    return msg.includes(this.where) ? msg : `${this.where}: ${msg}`;
  }
}

class ReadOnlyError extends Error {
  constructor() {
    super(READ_ONLY_MESSAGE);
    this.name = 'ReadOnlyError';
  }
}

/** One heartbeat on a connection of its own, closed afterwards. */
export async function heartbeatProbe(
  ep: MysqlEndpoint,
  opts: HeartbeatOptions & { readonly signal?: AbortSignal },
): Promise<ProbeResult> {
  const p = new HeartbeatProbe(ep, opts);
  try {
    return await p.probe(opts.signal);
  } finally {
    p.close();
  }
}

/** A TCP connect to "host:port", closed at once; bounded by `timeoutMs`. */
export function tcpProbe(address: string, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> {
  const { host, port } = splitAddress(address);
  const t0 = performance.now();
  const socket = netConnect({ host, port });
  const work = new Promise<ProbeResult>((resolve) => {
    socket.once('connect', () => {
      resolve({ ok: true, latencyMs: elapsed(t0) });
      socket.destroy();
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      const m = err.message.includes(String(port)) ? err.message : `${address}: ${err.message}`;
      resolve({ ok: false, error: m });
    });
  });
  return bounded(work, timeoutMs, signal, (why) => {
    socket.destroy();
    return {
      ok: false,
      error: why === 'timeout' ? `${address}: no connection within ${timeoutMs} ms` : `${address}: probe stopped`,
    };
  });
}

/**
 * The consistent snapshot a baseline reads from, and the binlog position that matches it exactly.
 *
 * MariaDB (no global lock):
 *   SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ
 *   START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY
 *   SHOW STATUS LIKE 'binlog_snapshot_%'       -> Binlog_snapshot_file / Binlog_snapshot_position
 *   SELECT BINLOG_GTID_POS(file, position)      -> GTID state at that position
 *   MariaDB takes the InnoDB read view and the binlog position under its commit-ordering lock, so every
 *   transaction before the position is in the snapshot and none after it: the position is the gap-free
 *   handoff to binlog streaming. The lock is internal and held for microseconds; writers never wait.
 *   (@@gtid_binlog_pos read in the transaction would not do: it is global and moves on with later commits.)
 *
 * MySQL (no binlog_snapshot_* variables):
 *   FLUSH TABLES WITH READ LOCK; SHOW MASTER STATUS; START TRANSACTION WITH CONSISTENT SNAPSHOT; UNLOCK TABLES
 *   Writes are blocked between FLUSH and UNLOCK; the time is measured and logged (typically milliseconds, but
 *   FLUSH first waits for running statements, so a long query on the source delays it; lock_wait_timeout is
 *   lowered to 10 s for the session so a stuck FLUSH fails instead of stalling the source).
 *
 * Schema stability: the baseline then opens every table it will copy inside the transaction, which takes
 * metadata locks held until it ends, so no DDL can change those tables while they are copied (DDL on them
 * waits for the baseline to finish). DDL that committed between the snapshot and those locks would make the
 * copied definitions newer than the snapshot; `ddlSince` scans that window of the binlog and the baseline
 * starts over if it finds DDL on included tables.
 */
import type { Logger } from 'pino';
import type { Connection as PromiseConnection, RowDataPacket } from 'mysql2/promise';
import type { BinlogPosition, MysqlPosition } from '../../record/position.ts';
import { compareBinlog } from '../../record/position.ts';
import { TidemarkError } from '../../core/errors.ts';
import { type AccountList, isListed } from '../../mysql/accounts.ts';
import { classifyStatement, splitUsePrefix } from './ddl.ts';
import type { TableFilter } from '../../mysql/table-filter.ts';
import { isMariaDb } from './prerequisites.ts';
import { formatXid } from './statement-errors.ts';
import { sourceStatus } from './status.ts';

export interface Snapshot {
  readonly position: MysqlPosition;
  readonly method: 'consistent-snapshot' | 'flush-tables-with-read-lock';
  /** How long writes on the source were blocked by tidemark (0 on MariaDB). */
  readonly lockMs: number;
  /** Snapshot time, microseconds since the epoch. */
  readonly timeUs: bigint;
}

function nowUs(): bigint {
  return BigInt(Date.now()) * 1000n;
}

async function mariadbSnapshot(conn: PromiseConnection): Promise<Snapshot> {
  await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
  const timeUs = nowUs();
  await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
  const [rows] = await conn.query<RowDataPacket[]>("SHOW STATUS LIKE 'binlog_snapshot_%'");
  const vars = new Map(rows.map((r) => [String(r['Variable_name']).toLowerCase(), String(r['Value'])]));
  const file = vars.get('binlog_snapshot_file');
  const pos = vars.get('binlog_snapshot_position');
  if (!file || !pos || !/^\d+$/.test(pos)) {
    throw new TidemarkError('the source reported no binlog_snapshot_file/position: is log_bin on?', {
      code: 'PREREQUISITE',
      retriable: false,
    });
  }
  const offset = BigInt(pos);
  const [g] = await conn.query<RowDataPacket[]>('SELECT BINLOG_GTID_POS(?, ?) AS g', [file, pos]);
  const gtid = g[0]?.['g'];
  const position: MysqlPosition = {
    kind: 'mysql',
    binlog: { file, offset },
    ...(typeof gtid === 'string' && gtid !== '' ? { gtid } : {}),
  };
  return { position, method: 'consistent-snapshot', lockMs: 0, timeUs };
}

async function mysqlSnapshot(conn: PromiseConnection): Promise<Snapshot> {
  await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
  await conn.query('SET SESSION lock_wait_timeout = 10');
  const t0 = performance.now();
  await conn.query('FLUSH TABLES WITH READ LOCK');
  let position: MysqlPosition;
  let timeUs: bigint;
  try {
    position = await sourceStatus(conn);
    timeUs = nowUs();
    await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
  } finally {
    await conn.query('UNLOCK TABLES');
  }
  const lockMs = performance.now() - t0;
  return { position, method: 'flush-tables-with-read-lock', lockMs, timeUs };
}

/**
 * A prepared XA transaction (XA PREPARE without its XA COMMIT yet) is invisible to the snapshot, and its rows are
 * in the binlog before the snapshot position: its XA COMMIT after it would carry no rows, so its changes would be
 * lost to the baseline and the stream alike. The snapshot is refused (retriable: the baseline is retried with
 * backoff) while XA RECOVER lists any. Which tables they change cannot be told, so any prepared XA counts.
 */
async function refusePreparedXa(conn: PromiseConnection, log: Logger): Promise<void> {
  let rows: RowDataPacket[];
  try {
    [rows] = await conn.query<RowDataPacket[]>('XA RECOVER');
  } catch (err) {
    // MySQL needs XA_RECOVER_ADMIN; without it the check cannot be made.
    log.warn({ err: err instanceof Error ? err.message : String(err) }, 'XA RECOVER failed: prepared XA not checked');
    return;
  }
  if (rows.length === 0) return;
  const xids = rows.slice(0, 5).map((r) => {
    const data = Buffer.from(r['data'] as Buffer | string);
    const g = Number(r['gtrid_length']);
    return formatXid(data.subarray(0, g), data.subarray(g, g + Number(r['bqual_length'])), Number(r['formatID']));
  });
  throw new TidemarkError(
    `${rows.length} XA transaction(s) are prepared on the source (${xids.join('; ')}${rows.length > 5 ? '; …' : ''}): ` +
      'their changes are neither in a snapshot taken now nor in the binlog after it, so the baseline waits for ' +
      'them to be resolved (XA COMMIT or XA ROLLBACK on the source) and retries',
    { code: 'BASELINE_XA', retriable: true, context: { prepared: rows.length } },
  );
}

/** Starts the snapshot transaction on `conn` and returns its binlog position. */
export async function startSnapshot(conn: PromiseConnection, version: string, log: Logger): Promise<Snapshot> {
  const snap = isMariaDb(version) ? await mariadbSnapshot(conn) : await mysqlSnapshot(conn);
  await refusePreparedXa(conn, log);
  log.info(
    { method: snap.method, lockMs: Math.round(snap.lockMs * 1000) / 1000, position: positionText(snap.position) },
    'baseline snapshot started',
  );
  return snap;
}

function positionText(p: MysqlPosition): string {
  return `${p.binlog.file}:${p.binlog.offset}${p.gtid ? ` (gtid ${p.gtid})` : ''}`;
}

/**
 * Looks for DDL on included tables (or objects of included schemas, or statements about listed `accounts`) in the
 * binlog between `from` and `to` (exclusive). Returns a keyword label
 * of the first one found, or null. Reads SHOW BINLOG EVENTS in pages; the window is the few milliseconds
 * between the snapshot and the baseline's metadata locks, so it is short.
 */
export async function ddlSince(
  conn: PromiseConnection,
  from: BinlogPosition,
  to: BinlogPosition,
  filter: TableFilter,
  accounts?: AccountList,
): Promise<string | null> {
  const [logs] = await conn.query<RowDataPacket[]>('SHOW BINARY LOGS');
  const files = logs.map((r) => String(r['Log_name']));
  let file = from.file;
  let pos = from.offset;
  for (;;) {
    if (compareBinlog({ file, offset: pos }, to) >= 0) return null;
    const [rows] = await conn.query<RowDataPacket[]>(`SHOW BINLOG EVENTS IN ? FROM ${pos.toString()} LIMIT 500`, [
      file,
    ]);
    for (const r of rows) {
      const at = { file, offset: BigInt(String(r['Pos'])) };
      if (compareBinlog(at, to) >= 0) return null;
      if (r['Event_type'] !== 'Query') continue;
      const { schema, sql } = splitUsePrefix(String(r['Info']));
      const cls = classifyStatement(sql, schema);
      if (cls.kind === 'table-ddl' && cls.tables.some((t) => filter.includesTable(t.schema, t.table))) {
        return cls.statement;
      }
      if (cls.kind === 'database-ddl' && filter.includesSchema(cls.database)) return cls.statement;
      if (cls.kind === 'object-ddl' && cls.object.objects.some((o) => filter.includesSchema(o.schema))) {
        return cls.statement;
      }
      if (cls.kind === 'account-ddl' && accounts && cls.account.accounts.some((a) => isListed(a, accounts))) {
        return cls.statement;
      }
    }
    const last = rows[rows.length - 1];
    if (rows.length === 500 && last) {
      pos = BigInt(String(last['End_log_pos']));
      continue;
    }
    const next = files[files.indexOf(file) + 1];
    if (next === undefined) return null;
    file = next;
    pos = 4n;
  }
}

/**
 * The source's current binlog position, for `tidemark status` / `verify` and for the baseline's checks.
 * MariaDB: SHOW MASTER STATUS, with the GTID state at exactly that file/offset from BINLOG_GTID_POS()
 * (@@gtid_binlog_pos read separately could already include a later commit). MySQL: SHOW MASTER STATUS
 * (SHOW BINARY LOG STATUS from 8.4) and its Executed_Gtid_Set.
 */
import type { Connection, Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import type { MysqlPosition } from '../../record/position.ts';
import { TidemarkError } from '../../core/errors.ts';

export type Queryable = Connection | Pool | PoolConnection;

const ER_PARSE_ERROR = 1064;

async function masterStatus(conn: Queryable): Promise<RowDataPacket | undefined> {
  try {
    const [rows] = await conn.query<RowDataPacket[]>('SHOW MASTER STATUS');
    return rows[0];
  } catch (err) {
    if ((err as { errno?: number }).errno !== ER_PARSE_ERROR) throw err;
    const [rows] = await conn.query<RowDataPacket[]>('SHOW BINARY LOG STATUS');
    return rows[0];
  }
}

/** Current end of the source's binlog as a MysqlPosition (with the GTID state there when known). */
export async function sourceStatus(conn: Queryable): Promise<MysqlPosition> {
  const st = await masterStatus(conn);
  if (!st || typeof st['File'] !== 'string') {
    throw new TidemarkError('SHOW MASTER STATUS returned nothing: binary logging is off on the source', {
      code: 'PREREQUISITE',
      retriable: false,
    });
  }
  const file = st['File'] as string;
  const offset = BigInt(String(st['Position']));
  let gtid: string | undefined;
  const executed = st['Executed_Gtid_Set'];
  if (typeof executed === 'string') {
    gtid = executed.replace(/\s+/g, '') || undefined;
  } else {
    gtid = await gtidAt(conn, file, offset);
  }
  return { kind: 'mysql', binlog: { file, offset }, ...(gtid ? { gtid } : {}) };
}

/** MariaDB: the GTID state at an event boundary of the binlog (BINLOG_GTID_POS), else @@gtid_binlog_pos. */
export async function gtidAt(conn: Queryable, file: string, offset: bigint): Promise<string | undefined> {
  try {
    const [rows] = await conn.query<RowDataPacket[]>('SELECT BINLOG_GTID_POS(?, ?) AS g', [file, offset.toString()]);
    const g = rows[0]?.['g'];
    if (typeof g === 'string') return g;
  } catch {
    // Not MariaDB, or the position is not a boundary: fall through.
  }
  try {
    const [rows] = await conn.query<RowDataPacket[]>('SELECT @@GLOBAL.gtid_binlog_pos AS g');
    const g = rows[0]?.['g'];
    return typeof g === 'string' && g !== '' ? g : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The drain of a planned switchover (`tidemark switchover`): once the primary is fenced (read_only, sessions
 * killed: the write pause starts), a marker row is written into the heartbeat table through the failover account
 * (READ_ONLY ADMIN writes through read_only), and the switchover waits until the standby's target has applied
 * it. The heartbeat table must be captured (source.include names it), so the marker travels behind every
 * transaction the primary committed before the fence: when the target has it, it has them all (zero loss).
 *
 * Why a marker and not positions: the primary's binlog also holds transactions capture filters out (the
 * monitor's own heartbeat writes when the table is not captured, other schemas), so the target's applied
 * position may never reach the primary's binlog end.
 */
import type mysql from 'mysql2/promise';
import { sleep, TidemarkError } from '../core/errors.ts';
import { type MysqlEndpoint, openSession } from '../mysql/session.ts';
import { createTableFilter } from '../mysql/table-filter.ts';
import { heartbeatUpsertSql, quoteIdent, splitTable } from './probes.ts';

/** A heartbeat table named schema.table. */
export interface HeartbeatTable {
  readonly schema: string;
  readonly table: string;
}

/** The heartbeat table, when capture includes it; otherwise an error that says what to add. */
export function capturedHeartbeat(
  source: { readonly include: readonly string[]; readonly exclude: readonly string[] },
  heartbeatTable: string,
): HeartbeatTable {
  const t = splitTable(heartbeatTable);
  if (t.schema === 'tidemark') {
    throw new TidemarkError(
      `switchover needs a captured heartbeat table, and tidemark's own schema is never captured: set ` +
        'failover.monitor.heartbeat.table to a table in another schema (e.g. tidemark_ha.heartbeat) and add it to ' +
        'source.include',
      { code: 'CONFIG' },
    );
  }
  if (!createTableFilter(source.include, source.exclude).includesTable(t.schema, t.table)) {
    throw new TidemarkError(
      `switchover needs the heartbeat table ${heartbeatTable} to be captured: add it to source.include ` +
        '(its marker row proves the standby has everything the primary committed)',
      { code: 'CONFIG' },
    );
  }
  return t;
}

async function query<T extends mysql.RowDataPacket[]>(conn: mysql.Connection, sql: string, args: unknown[] = []) {
  const [rows] = await conn.query<T>(sql, args);
  return rows;
}

/** Writes the marker row on the (fenced) primary, through the failover account; returns its sequence number. */
export async function writeMarker(primary: MysqlEndpoint, t: HeartbeatTable, writer: string): Promise<bigint> {
  const name = `${quoteIdent(t.schema)}.${quoteIdent(t.table)}`;
  const conn = await openSession(primary, { apply: false });
  try {
    await conn.query(heartbeatUpsertSql(t, 'NOW(6)'), [writer]);
    const rows = await query<mysql.RowDataPacket[]>(conn, `SELECT seq FROM ${name} WHERE writer = ?`, [writer]);
    return BigInt(String(rows[0]?.['seq'] ?? 0));
  } finally {
    await conn.end().catch(() => undefined);
  }
}

/** Waits until the target holds the marker at `seq` or later. */
export async function waitMarker(
  target: MysqlEndpoint & { readonly name: string },
  t: HeartbeatTable,
  writer: string,
  seq: bigint,
  signal: AbortSignal,
): Promise<string> {
  const name = `${quoteIdent(t.schema)}.${quoteIdent(t.table)}`;
  const conn = await openSession(target, { apply: false });
  const started = Date.now();
  try {
    for (;;) {
      const rows = await query<mysql.RowDataPacket[]>(conn, `SELECT seq FROM ${name} WHERE writer = ?`, [writer]).catch(
        (err: unknown) => {
          if ((err as { errno?: number }).errno === 1146) return []; // not created there yet
          throw err;
        },
      );
      const at = rows[0] ? BigInt(String(rows[0]['seq'])) : 0n;
      if (at >= seq) return `${target.name} applied the switchover marker ${seq} after ${Date.now() - started} ms`;
      if (signal.aborted) throw new TidemarkError('switchover drain stopped', { code: 'ABORTED' });
      await sleep(20, signal);
    }
  } finally {
    await conn.end().catch(() => undefined);
  }
}

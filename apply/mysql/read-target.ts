/**
 * Reading where each target stands, for status and verify: the position table in the replica, through the same
 * session setup the applier uses.
 */
import type mysql from 'mysql2/promise';
import { parsePositionRow, selectPositionSql, type StoredPosition } from './position-table.ts';
import { ER_NO_SUCH_TABLE, serverFields } from '../../mysql/errors.ts';
import { openSession } from '../../mysql/session.ts';
import { describeChain } from '../../core/errors.ts';
import type { ResolvedEndpoint } from '../../core/secret.ts';
import type { TargetConfig } from './config.ts';

/** A target as the config file resolves it (password attached). */
export type TargetEndpoint = ResolvedEndpoint<TargetConfig>;

export interface TargetRead {
  name: string;
  stored: StoredPosition | null;
  error?: string;
}

export async function readTarget(t: TargetEndpoint, source: string): Promise<TargetRead> {
  let conn: mysql.Connection | undefined;
  try {
    conn = await openSession(t, { apply: false });
    try {
      const [rows] = await conn.query<mysql.RowDataPacket[]>(selectPositionSql(source));
      return { name: t.name, stored: parsePositionRow(rows[0]) };
    } catch (err) {
      // No position table yet: nothing applied.
      const noTable = (e: unknown) => serverFields(e).errno === ER_NO_SUCH_TABLE;
      if (noTable(err) || noTable((err as { cause?: unknown }).cause)) {
        return { name: t.name, stored: null };
      }
      throw err;
    }
  } catch (err) {
    return { name: t.name, stored: null, error: describeChain(err) };
  } finally {
    await conn?.end().catch(() => {});
  }
}

/**
 * Primary keys from information_schema, for rows whose table map did not carry them (binlog events written
 * before binlog_row_metadata=FULL was switched on). Cached per table; the stream clears the cache after every
 * captured DDL. Note: this reads the table's current definition, not the one the event was written under.
 */
import type { RowDataPacket } from 'mysql2/promise';
import { openSourceConnection, type SourceConnection, type SourceEndpoint } from './connection.ts';

export class PkCache {
  private readonly source: SourceEndpoint;
  private readonly cache = new Map<string, readonly string[]>();
  private conn: SourceConnection | null = null;

  constructor(source: SourceEndpoint) {
    this.source = source;
  }

  async get(schema: string, table: string): Promise<readonly string[]> {
    const key = `${schema}\u0000${table}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    this.conn ??= await openSourceConnection(this.source, 'read primary keys');
    const [rows] = await this.conn.promise.query<RowDataPacket[]>(
      'SELECT COLUMN_NAME AS n FROM information_schema.STATISTICS ' +
        "WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
      [schema, table],
    );
    const pk = rows.map((r) => String(r['n']));
    this.cache.set(key, pk);
    return pk;
  }

  clear(): void {
    this.cache.clear();
  }

  async close(): Promise<void> {
    const c = this.conn;
    this.conn = null;
    if (c) await c.close();
  }
}

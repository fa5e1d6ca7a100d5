/**
 * A side connection to the source for the binlog stream (stream.ts), opened on first use:
 *
 *   checkSettings()   re-reads binlog_format / binlog_row_image (prerequisites.ts RUNTIME_VARIABLES) while
 *                     streaming; a global change to STATEMENT/MIXED is reported long before a statement-logged
 *                     change stops capture
 *   describeEvent()   SHOW BINLOG EVENTS for one event zongji cannot decode, so statement-format LOAD DATA
 *                     (Execute_load_query) is classified like any statement instead of passing unseen
 */
import type { RowDataPacket } from 'mysql2/promise';
import { TidemarkError } from '../../core/errors.ts';
import { openSourceConnection, type SourceConnection, type SourceEndpoint, endpointOf } from './connection.ts';
import { sourceError } from './errors.ts';
import { RUNTIME_VARIABLES, runtimeBinlogProblems } from './prerequisites.ts';

export interface BinlogEventRow {
  readonly type: string;
  readonly endOffset: bigint;
  /** SHOW BINLOG EVENTS' Info (for statements: "use `db`; …"). Holds SQL text: never log it. */
  readonly info: string;
}

export class SourceWatch {
  private readonly source: SourceEndpoint;
  private conn: Promise<SourceConnection> | null = null;
  private closed = false;

  constructor(source: SourceEndpoint) {
    this.source = source;
  }

  /** The side connection, opened once (concurrent callers share the attempt). */
  private connection(what: string): Promise<SourceConnection> {
    if (this.closed) {
      return Promise.reject(new TidemarkError(`${what}: the stream has ended`, { code: 'STOPPED', retriable: true }));
    }
    this.conn ??= openSourceConnection(this.source, what);
    const p = this.conn;
    p.catch(() => {
      if (this.conn === p) this.conn = null; // a failed attempt is not kept
    });
    return p;
  }

  /** Problems with the source's current binlog settings (empty when fine). */
  async checkSettings(): Promise<string[]> {
    try {
      const c = await this.connection('check binlog settings');
      const [rows] = await c.promise.query<RowDataPacket[]>(
        `SHOW GLOBAL VARIABLES WHERE Variable_name IN (${RUNTIME_VARIABLES.map(() => '?').join(',')})`,
        [...RUNTIME_VARIABLES],
      );
      const vars = new Map<string, string>();
      for (const r of rows) vars.set(String(r['Variable_name']).toLowerCase(), String(r['Value']));
      return runtimeBinlogProblems(vars, endpointOf(this.source));
    } catch (err) {
      await this.drop();
      throw sourceError(err, endpointOf(this.source), 'check binlog settings');
    }
  }

  /** The event starting at file:offset, which must end at `endOffset`. */
  async describeEvent(file: string, offset: bigint, endOffset: bigint): Promise<BinlogEventRow> {
    let rows: RowDataPacket[];
    try {
      const c = await this.connection('read a binlog event');
      [rows] = await c.promise.query<RowDataPacket[]>(`SHOW BINLOG EVENTS IN ? FROM ${offset.toString()} LIMIT 1`, [
        file,
      ]);
    } catch (err) {
      await this.drop();
      throw sourceError(err, endpointOf(this.source), `read the binlog event at ${file}:${offset}`);
    }
    const r = rows[0];
    const end = r ? BigInt(String(r['End_log_pos'])) : -1n;
    if (!r || end !== endOffset) {
      throw new TidemarkError(
        `cannot identify the binlog event at ${file}:${offset} (ending at ${endOffset}), which the binlog reader ` +
          'cannot decode: capture stops rather than skip a change it cannot see',
        { code: 'BINLOG_SEQUENCE', retriable: false, context: { file, offset } },
      );
    }
    return { type: String(r['Event_type']), endOffset: end, info: String(r['Info'] ?? '') };
  }

  /** Drops a failed connection; the next use opens a new one. */
  private async drop(): Promise<void> {
    const c = this.conn;
    this.conn = null;
    await c?.then((x) => x.close()).catch(() => {});
  }

  /** Closes the connection for good (a check still running then fails instead of reopening it). */
  async close(): Promise<void> {
    this.closed = true;
    await this.drop();
  }
}

/**
 * A side connection to the source for the binlog stream (stream.ts), opened on first use:
 *
 *   reportSettings()  re-reads binlog_format / binlog_row_image (prerequisites.ts RUNTIME_VARIABLES) while
 *                     streaming and logs an error naming the setting when it changes to one capture cannot
 *                     follow: a global change to STATEMENT/MIXED is reported long before a statement-logged change
 *                     stops capture (the STATEMENT_DML stop is what prevents loss; this warns before it happens)
 *   resolveOpaque()   SHOW BINLOG EVENTS for one event zongji cannot decode, so statement-format LOAD DATA
 *                     (Execute_load_query) is classified like any statement instead of passing unseen
 */
import type { RowDataPacket } from 'mysql2/promise';
import type { Logger } from 'pino';
import { TidemarkError } from '../../core/errors.ts';
import type { MysqlPosition } from '../../record/position.ts';
import type { BinlogItem } from './binlog-item.ts';
import { openSourceConnection, type SourceConnection, type SourceEndpoint, endpointOf } from './connection.ts';
import { splitUsePrefix } from './ddl.ts';
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
  private readonly log: Logger;
  private conn: Promise<SourceConnection> | null = null;
  private closed = false;
  /** The binlog settings problems last reported (reported again only when they change). */
  private settingsReported = '';

  constructor(source: SourceEndpoint, log: Logger) {
    this.source = source;
    this.log = log;
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

  /**
   * Logs the source's binlog settings problems as errors when they differ from the last report, and once that
   * they are fine again; a failed check is logged at debug level only (the stream itself reports a lost source).
   */
  async reportSettings(): Promise<void> {
    let problems: string[];
    try {
      problems = await this.checkSettings();
    } catch (err) {
      this.log.debug({ err: err instanceof Error ? err.message : String(err) }, 'binlog settings check failed');
      return;
    }
    const key = problems.join('\n');
    if (key !== '' && key !== this.settingsReported) {
      for (const p of problems) this.log.error({ host: this.source.host, port: this.source.port }, p);
    } else if (key === '' && this.settingsReported !== '') {
      this.log.info('source binlog settings are fit for capture again');
    }
    this.settingsReported = key;
  }

  /** Problems with the source's current binlog settings (empty when fine). */
  private async checkSettings(): Promise<string[]> {
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

  /**
   * An event zongji cannot decode (in binlog `file`, after the group ending at `after`), looked up on the source:
   * statement-format LOAD DATA (Execute_load_query) becomes a query item for the assembler; RAND / user-variable
   * / Begin_load_query events only accompany a statement that is classified itself, and are dropped (null). An
   * incident event means the source lost changes.
   */
  async resolveOpaque(
    item: Extract<BinlogItem, { type: 'opaque' }>,
    file: string,
    after: MysqlPosition,
  ): Promise<BinlogItem | null> {
    if (item.endOffset <= 0n) {
      throw new TidemarkError(
        `an event the binlog reader cannot decode, without an end position, follows ${file}:` +
          `${after.binlog.offset}: capture stops rather than skip a change it cannot see`,
        { code: 'BINLOG_SEQUENCE', retriable: false, context: { file } },
      );
    }
    const ev = await this.describeEvent(file, item.startOffset, item.endOffset);
    if (ev.type === 'Execute_load_query') {
      const q = splitUsePrefix(ev.info);
      return { type: 'query', schema: q.schema, sql: q.sql, timestampMs: 0, endOffset: item.endOffset };
    }
    if (ev.type === 'Incident') {
      throw new TidemarkError(
        `the source wrote an incident event at ${file}:${item.startOffset}: changes around it may be missing ` +
          'from its binlog; capture stops. Compare the tables (tidemark verify) and re-baseline ' +
          '(tidemark run --rebaseline)',
        { code: 'BINLOG_INCIDENT', retriable: false, context: { file, offset: item.startOffset } },
      );
    }
    return null;
  }

  /** The event starting at file:offset, which must end at `endOffset`. */
  private async describeEvent(file: string, offset: bigint, endOffset: bigint): Promise<BinlogEventRow> {
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

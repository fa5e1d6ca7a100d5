/**
 * What a BinlogStream is given (stream.ts): its tuning with the defaults, where it starts (ResumePoint, which it
 * also reports on failure) and its collaborators.
 */
import type { Logger } from 'pino';
import type { MysqlPosition } from '../../record/position.ts';
import type { CopiedTable } from '../../record/record.ts';
import type { TableFilter } from '../../mysql/table-filter.ts';
import type { PartialTx } from './assembler.ts';
import type { SourceEndpoint } from './connection.ts';
import type { SinkWriter } from './sink-writer.ts';
import type { TableCopier } from './table-copy.ts';

export interface StreamTuning {
  readonly highItems: number;
  readonly highRows: number;
  readonly heartbeatMs: number;
  /** On abort, how long to keep reading to reach a transaction boundary. */
  readonly stopGraceMs: number;
  /** How often binlog_format / binlog_row_image are read again while streaming (source-watch.ts). */
  readonly settingsCheckMs: number;
}

export const DEFAULT_STREAM_TUNING: StreamTuning = {
  highItems: 512,
  highRows: 20_000,
  heartbeatMs: 5_000,
  stopGraceMs: 5_000,
  settingsCheckMs: 30_000,
};

export interface ResumePoint {
  readonly start: MysqlPosition;
  readonly nextSeq: bigint;
  readonly replay: PartialTx | null;
  /** Copy windows open at `start` (copy-windows.ts; the resume commit's `copied`). */
  readonly copied?: readonly CopiedTable[] | undefined;
}

export interface StreamOptions {
  readonly source: SourceEndpoint & {
    readonly name: string;
    readonly server_id: number;
    /** source.accounts: their user/role/grant statements are captured (mysql/accounts.ts). */
    readonly accounts?: readonly string[];
  };
  readonly filter: TableFilter;
  readonly writer: SinkWriter;
  readonly log: Logger;
  readonly from: ResumePoint;
  readonly tuning?: Partial<StreamTuning>;
  readonly onNoPrimaryKey?: (schema: string, table: string) => void;
  /** Copies a table that moved into the include set (table-copy.ts); without it such a move stops the stream. */
  readonly copyTable?: TableCopier;
  /** Commit time of the last commit in the journal before this stream (the resume commit): stream times floor. */
  readonly lastCommitTimeUs?: bigint;
}

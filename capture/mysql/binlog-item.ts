/**
 * What the event decoder (events.ts) hands the transaction assembler (assembler.ts): one decoded binlog event,
 * reduced to what capture needs. Types only.
 */
import type { Column, RowImage, RowOp } from '../../record/record.ts';

/** A decoded binlog event, reduced to what capture needs. Offsets are end offsets (the next event's start). */
export type BinlogItem =
  | { readonly type: 'rotate'; readonly file: string; readonly offset: bigint }
  | {
      readonly type: 'gtid';
      /** "domain-server-seq" (MariaDB) or "uuid:n" (MySQL). */
      readonly gtid: string;
      /** MariaDB: group has no terminating COMMIT/XID (DDL, admin statements). null when unknown (MySQL). */
      readonly standalone: boolean | null;
      /** MariaDB XA groups: 'prepare' (XA START … XA END, XA_PREPARE event) or 'complete' (XA COMMIT/ROLLBACK). */
      readonly xa: false | 'prepare' | 'complete';
      /** The XA transaction's id as text ('x1' or 'x1','bq',7), when `xa`. */
      readonly xid?: string;
      readonly endOffset: bigint;
    }
  | {
      readonly type: 'query';
      readonly schema: string;
      readonly sql: string;
      readonly timestampMs: number;
      readonly endOffset: bigint;
      /** The session that ran it (temporary tables are per session). */
      readonly threadId?: number;
    }
  | { readonly type: 'xid'; readonly timestampMs: number; readonly endOffset: bigint }
  | { readonly type: 'xa-prepare'; readonly endOffset: bigint }
  /**
   * An event zongji cannot decode (statement-format LOAD DATA, RAND, user variables, incidents). The stream
   * looks it up (SHOW BINLOG EVENTS) and feeds a `query` item instead when it is a statement; the assembler
   * ignores one that reaches it.
   */
  | { readonly type: 'opaque'; readonly startOffset: bigint; readonly endOffset: bigint }
  | {
      readonly type: 'rows';
      readonly op: RowOp;
      readonly schema: string;
      readonly table: string;
      readonly columns: readonly Column[];
      /** Primary key column names; null when the table map did not say (resolved by the stream). */
      readonly pk: readonly string[] | null;
      readonly rows: readonly RowImage[];
      /** The rows event's NO_FOREIGN_KEY_CHECKS flag was set (RowsEntry.fkChecksOff). */
      readonly fkChecksOff?: boolean;
    };

/**
 * The transaction assembler's interface (assembler.ts): its options, what feed() outputs, and the transaction a
 * restarted stream replays. Types only.
 */
import type { MysqlPosition } from '../../record/position.ts';
import type { CommitEntry, CopiedTable, DdlEntry, RowsEntry } from '../../record/record.ts';
import type { TableRef } from './ddl.ts';
import type { ScopeOptions } from './statement-scope.ts';

export type AssemblerOutput =
  | { readonly kind: 'append'; readonly entry: RowsEntry | DdlEntry }
  /**
   * Copy `tables` from the source here (tables moving into the include set, ddl-crossschema.ts): the copy's
   * entries take seqs from `seq` on, the group's commit moves up by as many (the stream does both, then calls
   * copied()).
   */
  | { readonly kind: 'copy'; readonly tables: readonly TableRef[]; readonly txId: string; readonly seq: bigint }
  | { readonly kind: 'commit'; readonly entry: CommitEntry };

/** A transaction cut after some of its entries reached the sink (see Replay in assembler.ts). */
export interface PartialTx {
  readonly txId: string;
  /** Seq of the transaction's first entry. */
  readonly seq: bigint;
  /** Entries of the transaction already handed to the sink. */
  readonly entries: number;
}

/** ScopeOptions (statement-scope.ts): filter, accounts, onMixedAccounts. */
export interface AssemblerOptions extends ScopeOptions {
  readonly source: string;
  /** Where reading starts (end of the last complete group); its gtid seeds the GTID state. */
  readonly start: MysqlPosition;
  readonly nextSeq: bigint;
  readonly replay?: PartialTx | null;
  /** Capture clock, microseconds since the epoch. */
  readonly nowUs?: () => bigint;
  /** Called for statements that are neither transaction control nor captured DDL (keyword label only). */
  readonly onSkippedStatement?: (statement: string, schema: string) => void;
  /**
   * Commit time of the last commit already in the journal (baseline or stream). Stream commit times never go
   * below it: binlog timestamps have whole seconds and are statement start times, while the baseline's is the
   * snapshot time with sub-second precision, so without this floor `log` could appear to go backwards.
   */
  readonly lastCommitTimeUs?: bigint;
  /** Copy windows still open at `start` (the resume commit's `copied`, copy-windows.ts). */
  readonly copied?: readonly CopiedTable[];
}

/** The rollback index: public API (rollback/README.md, "Internals"). */
export { BATCH_CHANGES } from './builder.ts';
export type { PruneResult } from './prune.ts';
export { RollbackIndex, type RollbackIndexOptions } from './rollback-index.ts';
export { INDEX_FILE, IndexDamagedError, removeIndexFiles } from './schema.ts';
export type {
  CatchUpOptions,
  CatchUpProgress,
  DdlInfo,
  EntryRef,
  RowCounts,
  RowVersionRef,
  TxInfo,
  TxQuery,
} from './types.ts';
export { keyText, parseKeyArg } from './key.ts';

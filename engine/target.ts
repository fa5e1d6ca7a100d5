/**
 * The target half of the engine seam: what the runtime asks of a target engine — open an applier that applies
 * journal entries exactly once and stores its position in the target, read that stored position, verify the
 * target against the source. MySQL is the first implementation (apply/mysql/adapter.ts). Optional members are
 * capabilities a new engine can start without (engine/README.md).
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { z } from 'zod';
import type { SourcePosition } from '../record/position.ts';
import type { Entry, Phase, Value } from '../record/record.ts';
import type { SourceSection, TableRef } from './source.ts';

/** The keys every engine's `targets:` entry has. */
export interface TargetSection {
  /** The engine (`targets[].kind`; absent in a file: "mysql"). */
  readonly kind: string;
  readonly name: string;
  /** The site it is applied at (a standby's name), absent: the primary's. */
  readonly site?: string | undefined;
}

/** What a target stores, in the transaction that applied the rows: exactly once rests on it. */
export interface AppliedState {
  /** Highest seq applied. */
  readonly seq: bigint;
  /** LSN of the last applied commit entry (re-read from lsn + 1). */
  readonly lsn: bigint;
  readonly position: SourcePosition | null;
  readonly commitTimeUs: bigint | null;
  readonly phase: Phase | null;
}

export interface StoredPosition {
  /** null when nothing has been applied yet. */
  readonly state: AppliedState | null;
  readonly ddlPendingSeq: bigint | null;
  /** Why the target is held (rewind/forward/undo/takeover), or null. */
  readonly hold: string | null;
}

/** A target's stored position as read now; `error` when the target could not be read. */
export interface TargetRead {
  readonly name: string;
  readonly stored: StoredPosition | null;
  readonly error?: string;
}

export interface JournalItem {
  readonly lsn: bigint;
  readonly entry: Entry;
}

export interface ApplyRunOptions {
  readonly signal?: AbortSignal;
  /** Called after every target commit with the state now stored in the target. */
  readonly onApplied?: (state: AppliedState) => void | Promise<void>;
  /** Up to this LSN, one source transaction per target transaction (to find a failing one). */
  readonly isolateThroughLsn?: bigint;
}

/** One connection's worth of applying: open → run → close; the runtime opens a new one after a failure. */
export interface Applier {
  /** Reads (creating when needed) the stored position; null: nothing applied yet. Sets `hold`. */
  open(): Promise<AppliedState | null>;
  /**
   * Applies entries (from the stored lsn + 1) until they end or the signal aborts. Entries at or below the stored
   * seq are skipped; a source transaction is never split across target transactions; the stored position is
   * written in the transaction that applied the rows. Failures are TidemarkErrors (`retriable`: reopen and retry).
   */
  run(entries: AsyncIterable<JournalItem>, o: ApplyRunOptions): Promise<void>;
  close(): Promise<void>;
  /** The state last stored (or read by open()). */
  readonly state: AppliedState | null;
  /** Why the target is held, as open() read it; while held, run() is not called. */
  readonly hold: string | null;
  /** The hold says the target was promoted to primary: nothing is applied to it again. */
  readonly promoted: boolean;
  /** LSN of the last journal entry the current or last run() read (-1n before the first). */
  readonly lastReadLsn: bigint;
}

export type DifferenceKind = 'missing' | 'extra' | 'changed';

export interface Difference {
  /** Primary-key values in key order. */
  readonly pk: readonly Value[];
  /** "id=5, region='eu'" */
  readonly key: string;
  readonly kind: DifferenceKind;
}

export interface TableResult extends TableRef {
  readonly chunks: number;
  /** Rows on the source / on the target (as counted by the checksums). */
  readonly rows: number;
  readonly replicaRows: number;
  readonly equal: boolean;
  readonly differences: readonly Difference[];
  /** All differing rows found (differences may be capped). */
  readonly differenceCount: number;
  /** Why the columns or keys do not match (rows were not compared). */
  readonly columnsDiffer?: string;
  /** No primary key: compared as a whole, keys cannot be listed. */
  readonly noPrimaryKey?: boolean;
}

/** A schema object (view, routine, trigger, event …) compared by its normalised definition. */
export interface ObjectResult {
  readonly kind: string;
  readonly schema: string;
  readonly name: string;
  readonly equal: boolean;
  /** Why not: missing on one side, or the definitions differ. */
  readonly differs?: string;
}

export interface VerifyResult {
  readonly tables: readonly TableResult[];
  /** Engines that replicate schema objects compare them too (MySQL: apply/mysql/verify-objects.ts). */
  readonly objects?: readonly ObjectResult[];
  readonly equal: boolean;
}

export interface VerifyOptions<T extends TargetSection> {
  readonly source: SourceSection;
  readonly target: T;
  /** Tables to compare; undefined: every table the source section includes, on either side. */
  readonly tables?: readonly TableRef[] | undefined;
  readonly log: Logger;
  readonly signal?: AbortSignal | undefined;
}

export interface ApplierOptions<T extends TargetSection> {
  readonly target: T;
  /** The source's name; entries of another source are refused. */
  readonly source: string;
  /**
   * The source's engine (`source.kind`). Absent: the target's own kind. Another engine's entries go through the
   * target's cross-engine type mapping (or are refused when it has none).
   */
  readonly sourceKind?: string | undefined;
  readonly log: Logger;
  /** prom-client registry for the applier's metrics (none: no metrics). */
  readonly metrics?: Registry | undefined;
}

export interface TargetAdapter<T extends TargetSection = TargetSection> {
  /** The `targets[].kind` this adapter serves. */
  readonly kind: string;
  /** Validates one `targets:` entry (as SourceAdapter.configSchema; passwords resolved by the loader). */
  readonly configSchema: z.ZodType;
  /** Connects once, so a wrong host or password fails at start with one clear, non-retriable line. */
  preflight(target: T): Promise<void>;
  /** A new applier (async: an adapter may load its apply code only when it is used, as capture()). */
  applier(o: ApplierOptions<T>): Promise<Applier>;
  /** The stored position of `source` in the target (never throws: the error comes back as text). */
  readStored(target: T, source: string): Promise<TargetRead>;
  /**
   * Compares the target with the source table by table (checksums), listing differing keys. An adapter compares
   * only with sources it can read (MySQL: a MySQL source); another is a clear, non-retriable error.
   */
  verify(o: VerifyOptions<T>): Promise<VerifyResult>;
  /**
   * Optional: rewind/forward/undo on this target (rollback/). Absent: those commands refuse the target by name.
   * MySQL and PostgreSQL targets have it; rollback/dialect.ts holds the rest of each engine's part.
   */
  readonly rewind?: RewindCapability;
  /** Optional: takeover (failover/, node/failover-*): promote the target to primary. Absent: no failover for it. */
  readonly takeover?: TakeoverCapability;
}

/**
 * The hooks rewind needs from a target: the first statement of a rewind transaction locks the stored position
 * (only while it is still `seq`) and sets a hold; the last sets the point the target is left at.
 */
export interface RewindCapability {
  lockForRewindSql(source: string, seq: bigint | null, hold: string): string;
  setPointSql(source: string, st: AppliedState, hold: string | null): string;
}

/** Takeover: mark the target promoted (its applier stops for good). */
export interface TakeoverCapability {
  /** The hold a promoted target carries (Applier.promoted reads it). */
  readonly promotedHold: string;
}

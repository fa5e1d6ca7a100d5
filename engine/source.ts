/**
 * The source half of the engine seam: what the runtime (node/) and the commands ask of a source engine. MySQL is
 * the first implementation (capture/mysql/adapter.ts); a new engine implements this and registers it
 * (engine/registry.ts) under the `source.kind` its config files name. engine/README.md is the contract in prose.
 */
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { SourcePosition } from '../record/position.ts';
import type { CommitEntry, EntrySink } from '../record/record.ts';

/** The keys every engine's `source:` section has (its schema adds the engine's own). */
export interface SourceSection {
  /** The engine (`source.kind`; absent in a file: "mysql"). */
  readonly kind: string;
  /** The source's name: journal entries, targets' stored positions and ship topics carry it. */
  readonly name: string;
}

/** A schema table pair, as verify and the record model name tables. */
export interface TableRef {
  readonly schema: string;
  readonly table: string;
}

export type CapturePhase = 'starting' | 'baseline' | 'streaming' | 'stopped';

/** A running capture's progress, as `tidemark status`, `verify` and the capture state file see it. */
export interface CaptureStatus {
  readonly phase: CapturePhase;
  /** Position of the last commit handed to the journal. */
  readonly position: SourcePosition | null;
  /** Position after the last change read from the source's log, including changes with nothing to capture. */
  readonly readPosition: SourcePosition | null;
  readonly nextSeq: bigint;
  readonly reconnects: number;
  /** Times reading paused because the journal could not keep up. */
  readonly pauses: number;
}

export interface CaptureOptions<S extends SourceSection> {
  readonly source: S;
  /** Where entries go: rows/ddl with `append`, each transaction closed by a `commit` (durable when it resolves). */
  readonly sink: EntrySink;
  /** The last commit entry of this source in the journal (resume after it), or null for a new journal. */
  readonly resume: CommitEntry | null;
  readonly log: Logger;
  /** Take a new baseline even though the journal has a resume point (`tidemark run --rebaseline`). */
  readonly forceBaseline: boolean;
  /** How often to retry a retriable failure inside one run (the daemon passes "forever"). */
  readonly retry?: { readonly attempts: number };
  /** Tables of whole baselines that did not finish (see BaselineLedger); absent: not tracked. */
  readonly baselineLedger?: BaselineLedger;
}

/** A table a baseline copies, by name. */
export interface LedgerTable {
  readonly schema: string;
  readonly table: string;
}

/**
 * The tables whole baselines started to copy, kept durably until one finishes. A baseline that did not finish may
 * have created tables on the targets (apply runs DDL as it comes); when the next baseline does not copy one of
 * them again (it was renamed or dropped out of the included set meanwhile), that baseline drops it, else the
 * target keeps a table the source no longer has under that name.
 */
export interface BaselineLedger {
  /** Tables recorded by baselines that did not finish. */
  tables(): Promise<LedgerTable[]>;
  /** Adds `tables` (durable when it resolves): call before any of their DDL can reach the journal. */
  record(tables: readonly LedgerTable[]): Promise<void>;
  /** Forgets every table: the last baseline finished (its baseline-end commit is durable). */
  clear(): Promise<void>;
}

/** One capture attempt: baseline when due, then the change stream, until the signal aborts. */
export interface SourceCapture {
  /**
   * Resolves when `signal` aborts (at a transaction boundary); rejects with a TidemarkError on a failure, marked
   * `retriable` when the runtime should open a new capture from the journal's last commit and try again.
   */
  run(signal: AbortSignal): Promise<void>;
  status(): CaptureStatus;
}

/** The source's current position, or why it could not be read (status, verify). */
export interface SourceRead {
  readonly position: SourcePosition | null;
  readonly error?: string;
}

export interface SourceAdapter<S extends SourceSection = SourceSection> {
  /** The `source.kind` this adapter serves. */
  readonly kind: string;
  /** The engine tag of the positions it writes (record/position.ts positionEngine): "mysql", or its sequence engine. */
  readonly positionEngine: string;
  /**
   * Validates the `source:` section (issues name key paths as the file has them; defaults filled in). The config
   * loader then resolves password keys (password/password_env/password_file) and gives the result to the members
   * below as S.
   */
  readonly configSchema: z.ZodType;
  /**
   * Connects once and checks what capture needs, so a wrong host or password fails at start with one clear line
   * (a non-retriable TidemarkError naming the server); deeper prerequisites may wait for `capture().run`.
   */
  preflight(source: S): Promise<void>;
  /**
   * A capture from `resume` (exclusive) or a new baseline. Entries carry `source.name`, seqs continuing at
   * resume.seq + 1, and every commit a position of `positionEngine` that orders after the one before. Async so
   * that an adapter loads its capture code only when it is used (the config loader needs only configSchema).
   */
  capture(o: CaptureOptions<S>): Promise<SourceCapture>;
  /** The source's position now (read-only; never throws: the error comes back as text). */
  readPosition(source: S): Promise<SourceRead>;
}

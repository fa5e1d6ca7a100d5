/**
 * What the serial MySQL/MariaDB applier (applier.ts) is configured with — the target (targets[] of the config),
 * the statement bounds, LOAD DATA and overlap switches, test faults — and what one run() takes: the journal items
 * and the run's options. Types only.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Entry } from '../../record/record.ts';
import type { MysqlEndpoint } from '../../mysql/session.ts';
import type { GroupLimits } from '../../engine/batch-group.ts';
import type { NoPrimaryKey } from './batcher.ts';
import type { ApplierFaults } from './exec.ts';
import type { AppliedState } from './position-table.ts';

export interface ApplierTarget extends MysqlEndpoint {
  readonly name: string;
  /** Replica transaction bounds (apply-group.ts). */
  readonly batch: GroupLimits;
  readonly no_primary_key: NoPrimaryKey;
}

export interface MysqlApplierOptions {
  readonly target: ApplierTarget;
  /** Source name (config source.name); entries of another source are refused. */
  readonly source: string;
  readonly log?: Logger;
  /** prom-client registry to register the apply metrics in (none: no metrics). */
  readonly metrics?: Registry;
  /** Statement size bound (default 4 MiB; keep it below the server's max_allowed_packet). */
  readonly maxStatementBytes?: number;
  /** Rows per statement bound (default 1000). */
  readonly maxStatementRows?: number;
  readonly faults?: ApplierFaults;
  /**
   * Large inserts as LOAD DATA LOCAL INFILE (load-data.ts; MariaDB with local_infile ON, else INSERTs). Default true.
   */
  readonly loadData?: boolean;
  /** A LOAD DATA statement from this many rows on (default batcher.ts LOAD_MIN_ROWS). */
  readonly loadMinRows?: number;
  /** Build the next statements while the server runs the last query (pipeline.ts). Default true. */
  readonly overlap?: boolean;
}

export interface JournalItem {
  readonly lsn: bigint;
  readonly entry: Entry;
  /** Journal payload size of the entry (JournalEntry.bytes), bounding what apply holds back (table-order.ts). */
  readonly bytes?: number;
}

export interface RunOptions {
  readonly signal?: AbortSignal;
  /** Called after every replica commit with the state now stored in the replica. */
  readonly onApplied?: (state: AppliedState) => void | Promise<void>;
  /**
   * Up to this LSN every source transaction is committed on its own (a group of one), so that after a failure the
   * failing transaction is the first one after the stored position (the apply loop sets it after a non-retriable
   * error, up to the last LSN read then: lastReadLsn).
   */
  readonly isolateThroughLsn?: bigint;
}

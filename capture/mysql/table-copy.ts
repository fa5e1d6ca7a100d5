/**
 * A per-table baseline while streaming: tables that moved into the include set (RENAME TABLE out.t TO inc.t,
 * CREATE TABLE inc.t LIKE out.s; ddl-crossschema.ts) are copied from the source into the open unit of the
 * statement that moved them, through the baseline's own code (baseline.ts restricted to those tables: the same
 * consistent snapshot and position, DDL-race and prepared-XA checks, definitions, value handling and refusals).
 *
 * Output, appended to the open unit (the caller commits it with the statement's commit entry): the DDL of every
 * table first, always three entries per table, then the rows:
 *   per table   CREATE DATABASE IF NOT EXISTS inc, DROP TABLE IF EXISTS inc.t
 *   per table   SHOW CREATE TABLE (SEQUENCE) text, or DROP TABLE IF EXISTS inc.t again when it is gone by now
 *   the rows as insert entries, table after table
 * The baseline's unit commits, its CREATE DATABASE and its own DROPs are dropped and seqs renumbered from
 * `nextSeq`, so the copy is one unit with the statement: a crash before its commit drops it from the journal, and
 * the restart reads the statement again and copies again. A target may already have run that attempt's DDL (apply
 * runs DDL as it comes, see apply/mysql/README.md "DDL"); the fixed shape gives the new attempt's DDL the same
 * seqs whatever the row counts, so they are skipped as applied and the rows (seqs after them) are applied. `at` is
 * the snapshot's binlog position: the tables' events before it are in the copy (the caller opens copy windows,
 * copy-windows.ts).
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { backoffDelayMs, jittered } from '../../core/backoff.ts';
import type { BinlogPosition } from '../../record/position.ts';
import { TidemarkError } from '../../core/errors.ts';
import type { CommitEntry, DdlEntry, EntrySink, RowsEntry } from '../../record/record.ts';
import { Baseline, type BaselineOptions } from './baseline.ts';
import { qualified, type TableRef } from '../../mysql/sql-text.ts';
import { quoteIdent } from '../../mysql/sql.ts';
import { SinkWriter } from './sink-writer.ts';

export interface TableCopyRequest {
  readonly tables: readonly TableRef[];
  /** txId of the statement's unit (every copied entry carries it). */
  readonly txId: string;
  readonly nextSeq: bigint;
}

export interface TableCopyResult {
  /** The snapshot position the copy was read at. */
  readonly at: BinlogPosition;
  /** Seqs the copy's entries took. */
  readonly seqs: bigint;
  readonly rows: bigint;
}

export type TableCopier = (req: TableCopyRequest) => Promise<TableCopyResult>;

export interface TableCopierOptions {
  readonly source: BaselineOptions['source'];
  readonly writer: SinkWriter;
  readonly log: Logger;
  readonly signal: AbortSignal;
  readonly onNoPrimaryKey?: (schema: string, table: string) => void;
}

/**
 * Attempts while a retriable failure leaves nothing of the copy in the unit (about two minutes in all). A prepared
 * XA transaction on the source (BASELINE_XA: its rows would be missing from the snapshot and its XA COMMIT is not
 * captured) is waited for without a bound, with a warning naming it every XA_WARN_MS: an XA in a schema tidemark
 * does not capture must not stop capture, and nothing is lost while capture waits (the binlog keeps the changes).
 */
const RETRY_ATTEMPTS = 70;
const XA_WARN_MS = 30_000;

const key = (t: TableRef) => `${t.schema}\u0000${t.table}`;

const noSink: EntrySink = {
  append: () => {},
  commit: () => Promise.resolve(),
};

/**
 * Forwards the baseline's entries into the open unit under the statement's txId and new seqs; drops its commits,
 * its CREATE DATABASE and its DROP TABLE (the copy writes its own, always).
 */
class UnitWriter extends SinkWriter {
  readonly #into: SinkWriter;
  readonly #txId: string;
  seq: bigint;
  rows = 0n;
  appended = 0;
  /** Tables whose definition the baseline wrote (`schema\0table`). */
  readonly #created = new Set<string>();
  readonly #placeholders: readonly (readonly [string, DdlEntry])[];
  #rowsStarted = false;

  /** `placeholders`: per table, the DDL that stands in for its definition when the baseline writes none. */
  constructor(into: SinkWriter, txId: string, seq: bigint, placeholders: readonly (readonly [string, DdlEntry])[]) {
    super(noSink);
    this.#into = into;
    this.#txId = txId;
    this.seq = seq;
    this.#placeholders = placeholders;
  }

  /** Before the first row (or at the end): a placeholder for each table the baseline wrote no definition for. */
  async definitionsDone(): Promise<void> {
    if (this.#rowsStarted) return;
    this.#rowsStarted = true;
    for (const [k, ddl] of this.#placeholders) if (!this.#created.has(k)) await this.write(ddl);
  }

  override get openEntries(): number {
    return 0; // nothing for the baseline to close: the statement's commit closes the unit
  }

  override get failed(): boolean {
    return this.#into.failed;
  }

  override async append(entry: RowsEntry | DdlEntry): Promise<void> {
    if (entry.kind === 'ddl' && (entry.tables.length === 0 || /^DROP TABLE IF EXISTS /.test(entry.sql))) return;
    const t = entry.kind === 'ddl' ? entry.tables[0] : undefined;
    if (t) this.#created.add(key(t));
    if (entry.kind === 'rows') await this.definitionsDone();
    await this.write(entry);
  }

  async write(entry: RowsEntry | DdlEntry): Promise<void> {
    const e = { ...entry, seq: this.seq, txId: this.#txId };
    this.seq += e.kind === 'rows' ? BigInt(e.rows.length) : 1n;
    if (e.kind === 'rows') this.rows += BigInt(e.rows.length);
    this.appended++;
    await this.#into.append(e);
  }

  override async commit(_entry: CommitEntry): Promise<void> {}
}

export function tableCopier(o: TableCopierOptions): TableCopier {
  return async (req) => {
    const names = req.tables.map((t) => `${t.schema}.${t.table}`).join(', ');
    const ddl = (t: TableRef, sql: string, tables: DdlEntry['tables']): DdlEntry => ({
      kind: 'ddl',
      source: o.source.name,
      seq: 0n,
      txId: req.txId,
      schema: t.schema,
      tables,
      sql,
    });
    const drop = (t: TableRef) => ddl(t, `DROP TABLE IF EXISTS ${qualified(t)}`, [t]);
    const w = new UnitWriter(
      o.writer,
      req.txId,
      req.nextSeq,
      req.tables.map((t) => [key(t), drop(t)] as const),
    );
    for (const t of req.tables) {
      await w.write(ddl(t, `CREATE DATABASE IF NOT EXISTS ${quoteIdent(t.schema)}`, []));
      await w.write(drop(t));
    }
    const wanted = new Set(req.tables.map(key));
    const log = o.log.child({ copy: names });
    let xaWarnedAt = 0;
    for (let attempt = 1; ; attempt++) {
      const before = w.appended;
      const b = new Baseline({
        source: o.source,
        filter: {
          includesTable: (s, tb) => wanted.has(key({ schema: s, table: tb })),
          includesSchema: (s) => req.tables.some((t) => t.schema === s),
        },
        writer: w,
        log,
        nextSeq: w.seq,
        signal: o.signal,
        definitionsFirst: true,
        ...(o.onNoPrimaryKey ? { onNoPrimaryKey: o.onNoPrimaryKey } : {}),
      });
      try {
        const r = await b.run();
        await w.definitionsDone(); // tables gone by now: keep the shape (see the file comment)
        log.info(
          { rows: w.rows.toString(), at: `${r.position.binlog.file}:${r.position.binlog.offset}` },
          'table copied',
        );
        return { at: r.position.binlog, seqs: w.seq - req.nextSeq, rows: w.rows };
      } catch (err) {
        const e = err instanceof TidemarkError ? err : null;
        // Nothing of this attempt is in the unit yet (DDL racing the snapshot, a prepared XA transaction, a lost
        // connection before the first row): try again, a little later each time.
        const xa = e?.code === 'BASELINE_XA';
        if (e?.retriable && w.appended === before && (xa || attempt < RETRY_ATTEMPTS) && !o.signal.aborted) {
          if (xa && Date.now() - xaWarnedAt >= XA_WARN_MS) {
            xaWarnedAt = Date.now();
            log.warn({ code: e.code, attempt }, `table copy waits: ${e.message}`);
          } else log.info({ code: e?.code, attempt }, 'table copy: retrying');
          await delay(jittered(backoffDelayMs(attempt, 50, 2000)), undefined, { signal: o.signal }).catch(() => {});
          continue;
        }
        if (e?.code === 'ABORTED') throw e; // stopping: the next start copies again
        // Entries of the copy may be in the open unit: only a restart (which drops the uncommitted tail of the
        // journal and reads the statement again) can start it over.
        throw new TidemarkError(
          `copying ${names}, which moved into the captured tables, failed: ${(err as Error).message}; ` +
            'restart tidemark run to copy it again',
          { code: e?.code === 'UNSUPPORTED_TYPE' ? 'UNSUPPORTED_TYPE' : 'TABLE_COPY', retriable: false, cause: err },
        );
      }
    }
  };
}

/**
 * The PostgreSQL applier (engine/target.ts Applier): applies journal transactions to a PostgreSQL target exactly
 * once. Each source transaction is one target transaction:
 *   BEGIN; SET LOCAL session_replication_role = replica;   (ordinary triggers and FK actions do not fire again:
 *                                                         the source already ran them, their effects are journaled)
 *   INSERT / UPDATE … WHERE pk / DELETE … WHERE pk       (statements.ts: text parameters cast to the column types)
 *   UPDATE tidemark.applied SET seq, lsn, position …     (position.ts: only while still at the seq we read)
 *   COMMIT
 * so a crash at any point leaves the target either before or after the whole source transaction, with the stored
 * position saying which; entries at or below the stored seq are skipped. Every UPDATE/DELETE must touch exactly one
 * row (0 rows: the target has diverged — APPLY_DIVERGED, never silently skipped). DDL entries are refused.
 */
import type { Logger } from 'pino';
import type pg from 'pg';
import { TidemarkError } from '../../core/errors.ts';
import type { Applier, ApplyRunOptions, AppliedState, JournalItem } from '../../engine/target.ts';
import { wrapPgError } from '../../postgres/errors.ts';
import { openPgClient } from '../../postgres/session.ts';
import type { CommitEntry, RowsEntry } from '../../record/record.ts';
import { readTargetTable } from './catalog.ts';
import type { PgTargetSection } from './config.ts';
import { createSql, ensureRowSql, hasTableSql, parseStored, selectSql, storeParams, storeSql } from './position.ts';
import { buildStatements, paramsOf, type RowStatement, type TableStatements, type TargetTable } from './statements.ts';

export interface PgApplierOptions {
  readonly target: PgTargetSection;
  readonly source: string;
  readonly log: Logger;
}

/**
 * Opens an apply session on the target. A standby kept read-only for clients until it is promoted
 * (`ALTER SYSTEM SET default_transaction_read_only = on`, failover/README.md "PostgreSQL sites") still takes
 * tidemark's writes: the apply session turns the default off for itself only.
 */
export async function openApplySession(t: PgTargetSection, app = 'tidemark-apply'): Promise<pg.Client> {
  const c = await openPgClient(t, { applicationName: app, tlsKey: `targets.${t.name}.tls` });
  try {
    await c.query('SET default_transaction_read_only = off');
  } catch (err) {
    await c.end().catch(() => {});
    throw wrapPgError(err, `target ${t.name}: SET default_transaction_read_only = off`);
  }
  return c;
}

/** Creates tidemark.applied when missing (the apply role needs CREATE on the database then) and the source's row. */
export async function preparePositionTable(client: pg.Client, source: string): Promise<void> {
  const r = await client.query(hasTableSql);
  if ((r.rows[0] as { present: unknown } | undefined)?.present !== 't') {
    for (const sql of createSql) await client.query(sql);
  }
  await client.query(ensureRowSql, [source]);
}

export class PgApplier implements Applier {
  readonly #o: PgApplierOptions;
  #client: pg.Client | null = null;
  #inTx = false;
  /** Shapes and statements per "schema.table|columns" (the catalog is read once per session). */
  readonly #shapes = new Map<string, TargetTable>();
  readonly #statements = new Map<string, TableStatements>();
  state: AppliedState | null = null;
  hold: string | null = null;
  readonly promoted = false;
  lastReadLsn = -1n;

  constructor(o: PgApplierOptions) {
    this.#o = o;
  }

  async open(): Promise<AppliedState | null> {
    const client = await openApplySession(this.#o.target);
    this.#client = client;
    try {
      await preparePositionTable(client, this.#o.source);
      const stored = parseStored((await client.query(selectSql, [this.#o.source])).rows[0]);
      this.state = stored.state;
      this.hold = stored.hold;
      return this.state;
    } catch (err) {
      throw wrapPgError(err, `target ${this.#o.target.name}: reading tidemark.applied`, {
        target: this.#o.target.name,
      });
    }
  }

  async run(entries: AsyncIterable<JournalItem>, o: ApplyRunOptions): Promise<void> {
    const client = this.#client;
    if (!client) throw new Error('postgres applier: run() before open()');
    let baselineUnit = false;
    try {
      for await (const { lsn, entry } of entries) {
        this.lastReadLsn = lsn;
        if (entry.source !== this.#o.source) {
          throw new TidemarkError(
            `target ${this.#o.target.name}: journal entry of source "${entry.source}", expected "${this.#o.source}"`,
            { code: 'APPLY_STATE' },
          );
        }
        if (this.state && entry.seq <= this.state.seq) continue; // applied already (exactly once)
        if (!this.#inTx) {
          if (o.signal?.aborted) break; // stop only between transactions
          await client.query('BEGIN');
          this.#inTx = true;
          await client.query('SET LOCAL session_replication_role = replica');
          // A baseline unit may repeat rows of an unfinished earlier baseline: its inserts overwrite them.
          baselineUnit = this.state === null || this.state.phase === 'baseline' || entry.txId.startsWith('baseline:');
        }
        if (entry.kind === 'rows') await this.#rows(client, entry, baselineUnit);
        else if (entry.kind === 'commit') await this.#commit(client, entry, lsn, o);
        else {
          throw new TidemarkError(
            `target ${this.#o.target.name}: a DDL entry (seq ${entry.seq}: ${entry.sql.slice(0, 120)}) cannot be ` +
              'applied to a PostgreSQL target yet (cross-engine DDL mapping is not implemented); apply it by hand ' +
              'and re-baseline',
            { code: 'APPLY_FAILED', context: { seq: `${entry.seq}`, schema: entry.schema } },
          );
        }
      }
    } catch (err) {
      await this.#rollback();
      throw wrapPgError(err, `target ${this.#o.target.name}: applying`, { target: this.#o.target.name });
    }
    await this.#rollback(); // a transaction cut off by the end of the entries (stop) is not kept
  }

  async #statementsFor(client: pg.Client, e: RowsEntry): Promise<TableStatements> {
    const key = `${e.schema}.${e.table}|${e.columns.map((c) => c.name).join(',')}`;
    let s = this.#statements.get(key);
    if (s) return s;
    const tk = `${e.schema}.${e.table}`;
    let shape = this.#shapes.get(tk);
    if (!shape) {
      shape = await readTargetTable(client, e.schema, e.table);
      this.#shapes.set(tk, shape);
    }
    s = buildStatements(shape, e.columns);
    this.#statements.set(key, s);
    return s;
  }

  async #rows(client: pg.Client, e: RowsEntry, baselineUnit: boolean): Promise<void> {
    const s = await this.#statementsFor(client, e);
    const st: RowStatement =
      e.op === 'insert' ? (baselineUnit ? s.upsert : s.insert) : e.op === 'update' ? s.update : s.delete;
    for (let i = 0; i < e.rows.length; i++) {
      const r = e.rows[i]!;
      if ((e.op !== 'insert' && !r.before) || (e.op !== 'delete' && !r.after)) {
        throw new TidemarkError(
          `journal ${e.op} row at seq ${e.seq + BigInt(i)} of ${e.schema}.${e.table} lacks an image`,
          {
            code: 'APPLY_BAD_ENTRY',
          },
        );
      }
      const res = await client.query({ text: st.sql, values: paramsOf(st, r.before, r.after) });
      if (e.op !== 'insert' && res.rowCount !== 1) {
        throw new TidemarkError(
          `target ${this.#o.target.name}: ${e.op} of ${e.schema}.${e.table} at seq ${e.seq + BigInt(i)} (source ` +
            `transaction ${e.txId}) matched ${res.rowCount ?? 0} rows${res.rowCount === 0 ? ': no such row on the replica' : ''}` +
            ' — the target has diverged from the source; run tidemark verify and re-baseline the table',
          { code: 'APPLY_DIVERGED', context: { schema: e.schema, table: e.table, seq: `${e.seq + BigInt(i)}` } },
        );
      }
    }
  }

  async #commit(client: pg.Client, c: CommitEntry, lsn: bigint, o: ApplyRunOptions): Promise<void> {
    const next: AppliedState = { seq: c.seq, lsn, position: c.position, commitTimeUs: c.commitTimeUs, phase: c.phase };
    const res = await client.query(storeSql, storeParams(this.#o.source, this.state, next));
    if (res.rowCount !== 1) {
      throw new TidemarkError(
        `target ${this.#o.target.name}: tidemark.applied of source ${this.#o.source} moved or was held while ` +
          'applying (another applier, or a hold): this transaction was rolled back',
        { code: 'APPLY_STATE', retriable: true },
      );
    }
    await client.query('COMMIT');
    this.#inTx = false;
    this.state = next;
    await o.onApplied?.(next);
  }

  async #rollback(): Promise<void> {
    if (this.#inTx) await this.#client?.query('ROLLBACK').catch(() => {});
    this.#inTx = false;
  }

  async close(): Promise<void> {
    await this.#rollback();
    await this.#client?.end().catch(() => {});
    this.#client = null;
  }
}

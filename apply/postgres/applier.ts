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
 * row (0 rows: the target has diverged — APPLY_DIVERGED, never silently skipped). DDL entries of a PostgreSQL source
 * (its statement text, TRUNCATE) run in the same transaction, after `SET LOCAL search_path` to the schema the
 * statement ran in: PostgreSQL's DDL is transactional, so a DDL and the position commit together or not at all
 * (no "DDL pending" state as on MySQL). DDL of another engine's source is refused (no cross-engine mapping yet).
 */
import type { Logger } from 'pino';
import type pg from 'pg';
import { TidemarkError } from '../../core/errors.ts';
import type { Applier, ApplyRunOptions, AppliedState, JournalItem } from '../../engine/target.ts';
import { wrapPgError } from '../../postgres/errors.ts';
import { openPgClient } from '../../postgres/session.ts';
import { qualifiedName, quoteIdent } from '../../postgres/sql.ts';
import type { CommitEntry, DdlEntry, RowsEntry, Value } from '../../record/record.ts';
import { readTargetTable } from './catalog.ts';
import type { PgTargetSection } from './config.ts';
import { createSql, ensureRowSql, hasTableSql, parseStored, selectSql, storeParams, storeSql } from './position.ts';
import { type ColumnAt, checkPgTarget, mysqlValueToPg, pgCreateTableSql } from './from-mysql.ts';
import { buildStatements, paramsOf, type RowStatement, type TableStatements, type TargetTable } from './statements.ts';

export interface PgApplierOptions {
  readonly target: PgTargetSection;
  readonly source: string;
  /** The source's engine (absent: postgres). `mysql`: rows go through the MariaDB → PostgreSQL mapping (from-mysql.ts). */
  readonly sourceKind?: string | undefined;
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
        else if (this.#fromMysql) await this.#mysqlDdl(client, entry);
        else await this.#ddl(client, entry);
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
      shape = await readTargetTable(client, e.schema, e.table).catch((err: unknown) => {
        // Cross-engine: a missing table is named with the CREATE TABLE of the mapped types.
        if (!this.#fromMysql || !(err instanceof TidemarkError) || err.code !== 'APPLY_BAD_ENTRY') throw err;
        throw new TidemarkError(
          `${err.message}; for this MariaDB table: ${pgCreateTableSql(e.schema, e.table, e.columns, e.pk)}`,
          {
            code: 'APPLY_BAD_ENTRY',
            context: err.context,
          },
        );
      });
      this.#shapes.set(tk, shape);
    }
    if (this.#fromMysql) {
      // Cross-engine: every column the entry carries must map exactly onto its target column (from-mysql.ts).
      const types = new Map(shape.columns.map((c) => [c.name, c.type]));
      for (const c of e.columns) {
        const t = types.get(c.name);
        if (t !== undefined) checkPgTarget({ schema: e.schema, table: e.table, column: c.name }, c, t);
      }
    }
    s = buildStatements(shape, e.columns);
    this.#statements.set(key, s);
    return s;
  }

  /**
   * A DDL entry of a MariaDB source. Its baseline's DROP TABLE IF EXISTS of a table becomes TRUNCATE of the target's
   * table (the copy starts from empty, the DBA's PostgreSQL definition stays); its CREATE DATABASE / CREATE TABLE /
   * object definitions are not carried over (the target's tables are created by the DBA with the mapped types and
   * checked at their first row). A DDL while streaming is refused (APPLY_TYPE_MAP): MariaDB DDL is not translated.
   */
  async #mysqlDdl(client: pg.Client, e: DdlEntry): Promise<void> {
    if (!e.txId.startsWith('baseline')) {
      throw new TidemarkError(
        `target ${this.#o.target.name}: the MariaDB source ran DDL (seq ${e.seq}: ${e.sql.slice(0, 120)}); MariaDB DDL ` +
          'is not translated to PostgreSQL: make the equivalent change on the target by hand (types per apply/postgres/' +
          'README.md "Cross-engine"), then `tidemark skip` this transaction',
        { code: 'APPLY_TYPE_MAP', context: { seq: `${e.seq}`, schema: e.schema } },
      );
    }
    if (/^DROP TABLE IF EXISTS /i.test(e.sql) && e.tables.length === 1) {
      const t = e.tables[0]!;
      const present = await client.query('SELECT to_regclass($1) IS NOT NULL AS present', [
        qualifiedName(t.schema, t.table),
      ]);
      if ((present.rows[0] as { present: unknown }).present === 't') {
        await client.query(`TRUNCATE ${qualifiedName(t.schema, t.table)}`);
      }
      this.#shapes.delete(`${t.schema}.${t.table}`);
    }
    this.#o.log.debug({ seq: `${e.seq}` }, 'MariaDB baseline DDL not carried to PostgreSQL');
  }

  get #fromMysql(): boolean {
    return this.#o.sourceKind === 'mysql';
  }

  /** A MariaDB row image as the text values the target columns read (identity for a PostgreSQL source). */
  #image(e: RowsEntry, img: readonly Value[] | null): readonly Value[] | null {
    if (!img || !this.#fromMysql) return img;
    const shape = this.#shapes.get(`${e.schema}.${e.table}`);
    const types = new Map(shape?.columns.map((c) => [c.name, c.type]));
    return img.map((v, i) => {
      const c = e.columns[i]!;
      const at: ColumnAt = { schema: e.schema, table: e.table, column: c.name };
      return mysqlValueToPg(at, c, types.get(c.name) ?? '', v);
    });
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
      const values = paramsOf(st, this.#image(e, r.before), this.#image(e, r.after));
      const res = await client.query({ text: st.sql, values });
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

  /** One DDL statement, in the source transaction's target transaction (transactional DDL). */
  async #ddl(client: pg.Client, e: DdlEntry): Promise<void> {
    const refuse = (why: string, cause?: unknown) =>
      new TidemarkError(
        `target ${this.#o.target.name}: a DDL entry (seq ${e.seq}: ${e.sql.slice(0, 120)}) cannot be applied to a ` +
          `PostgreSQL target: ${why}; apply it by hand and re-baseline`,
        { code: 'APPLY_FAILED', cause, context: { seq: `${e.seq}`, schema: e.schema } },
      );
    const pos = this.state?.position;
    if (pos && (pos.kind !== 'sequence' || pos.engine !== 'postgres')) {
      throw refuse('it comes from a source of another engine (cross-engine DDL mapping is not implemented)');
    }
    try {
      if (e.schema === '') await client.query(e.sql);
      else {
        // The statement's unqualified names resolve in the schema it ran in; the session's path is put back after.
        const was = await client.query("SELECT current_setting('search_path') AS p");
        await client.query(`SET LOCAL search_path TO ${quoteIdent(e.schema)}`);
        await client.query(e.sql);
        await client.query("SELECT set_config('search_path', $1, true)", [String(was.rows[0]?.['p'] ?? '')]);
      }
    } catch (err) {
      const w = wrapPgError(err, `target ${this.#o.target.name}: DDL at seq ${e.seq}`, { seq: `${e.seq}` });
      if (w.retriable) throw w;
      throw refuse(w.message, w);
    } finally {
      // Table shapes and statements are read again after any DDL (also when it failed: the transaction is gone).
      this.#shapes.clear();
      this.#statements.clear();
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

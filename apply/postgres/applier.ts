/**
 * The PostgreSQL applier (engine/target.ts Applier): applies journal transactions to a PostgreSQL target exactly
 * once. Several source transactions are grouped into one target transaction while more are immediately available
 * (targets[].batch, as apply/mysql), and their rows go out as few statements (batcher.ts), several to a query
 * (pipeline.ts):
 *   BEGIN; SET LOCAL session_replication_role = replica;   (ordinary triggers and FK actions do not fire again:
 *                                                         the source already ran them, their effects are journaled)
 *   multi-row INSERT / UPDATE … FROM (VALUES …) / DELETE … USING (VALUES …) / UPDATE … WHERE pk   (row counts checked)
 *   UPDATE tidemark.applied SET seq, lsn, position …     (position.ts: only while still at the seq we read; else
 *                                                         a division by zero, so that nothing commits)
 *   SELECT pg_replication_origin_xact_setup(…); COMMIT   (origin.ts: the writes carry tidemark's origin)
 * so a crash at any point leaves the target either before or after the whole group, with the stored position
 * saying which; entries at or below the stored seq are skipped. A group ends only at a source commit, so a reader
 * never sees part of a source transaction. Every UPDATE/DELETE must touch exactly its rows (fewer: the target has
 * diverged — APPLY_DIVERGED, never silently skipped). DDL entries of a PostgreSQL source (its statement text,
 * TRUNCATE) run in the same transaction, after `SET LOCAL search_path` to the schema the statement ran in:
 * PostgreSQL's DDL is transactional, so a DDL and the position commit together or not at all (no "DDL pending"
 * state as on MySQL); a group with a DDL ends at that source transaction's commit.
 */
import type { Logger } from 'pino';
import type pg from 'pg';
import type { Registry } from 'prom-client';
import { TidemarkError } from '../../core/errors.ts';
import { type ApplyMetrics, applyMetrics, noMetrics } from '../../engine/apply-metrics.ts';
import { BATCH_DEFAULTS } from '../../engine/batch-config.ts';
import { type GroupCount, groupDue, pullForGroup } from '../../engine/batch-group.ts';
import { Puller } from '../../engine/puller.ts';
import type { Applier, ApplyRunOptions, AppliedState, JournalItem } from '../../engine/target.ts';
import { sqlStateOf, wrapPgError } from '../../postgres/errors.ts';
import { openPgClient } from '../../postgres/session.ts';
import { qualifiedName, quoteIdent } from '../../postgres/sql.ts';
import type { DdlEntry, RowsEntry, Value } from '../../record/record.ts';
import { clearTableStatement, isFirstBaselineChunk, PgBatcher } from './batcher.ts';
import { readTargetTable } from './catalog.ts';
import type { PgTargetSection } from './config.ts';
import { createSql, ensureRowSql, hasTableSql, parseStored, selectSql, storeParams, storeSql } from './position.ts';
import { type ColumnAt, checkPgTarget, mysqlValueToPg, pgCreateTableSql } from './from-mysql.ts';
import { setupOrigin, xactSetupSql } from './origin.ts';
import { PgPipeline } from './pipeline.ts';
import { buildStatements, inlineParams, type TableStatements, type TargetTable } from './statements.ts';

export interface PgApplierOptions {
  readonly target: PgTargetSection;
  readonly source: string;
  /** The source's engine (absent: postgres). `mysql`: rows go through the MariaDB → PostgreSQL mapping (from-mysql.ts). */
  readonly sourceKind?: string | undefined;
  readonly log: Logger;
  /** prom-client registry for the apply metrics (none: no metrics). */
  readonly metrics?: Registry | undefined;
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

interface Group extends GroupCount {
  /** What the group stores when it commits: the last commit entry seen. */
  target: AppliedState | null;
  /** A DDL ran in it: it ends at this source transaction's commit (its locks are not held longer). */
  ddl: boolean;
}

export class PgApplier implements Applier {
  readonly #o: PgApplierOptions;
  readonly #metrics: ApplyMetrics;
  #client: pg.Client | null = null;
  /** Shapes and statements per "schema.table|columns" (the catalog is read once per session). */
  readonly #shapes = new Map<string, TargetTable>();
  readonly #statements = new Map<string, TableStatements>();
  readonly #batcher = new PgBatcher();
  #pipe: PgPipeline | null = null;
  /** The session's replication origin is set up: every commit records its source commit. */
  #origin = false;
  #group: Group | null = null;
  /** A source transaction is open (some of its entries applied into the group) and whether it is a baseline unit. */
  #txOpen = false;
  #baselineUnit = false;
  /** The baseline unit whose table was cleared last (one clear per unit, however many rows entries it has). */
  #cleared = '';
  state: AppliedState | null = null;
  hold: string | null = null;
  readonly promoted = false;
  lastReadLsn = -1n;

  constructor(o: PgApplierOptions) {
    this.#o = o;
    this.#metrics = o.metrics ? applyMetrics(o.metrics, { target: o.target.name, source: o.source }) : noMetrics;
  }

  async open(): Promise<AppliedState | null> {
    const t = this.#o.target;
    const client = await openApplySession(t);
    this.#client = client;
    this.#pipe = new PgPipeline((sql) => client.query(sql) as Promise<pg.QueryResult | pg.QueryResult[]>, t.name);
    try {
      await preparePositionTable(client, this.#o.source);
      const stored = parseStored((await client.query(selectSql, [this.#o.source])).rows[0]);
      this.state = stored.state;
      this.hold = stored.hold;
    } catch (err) {
      throw wrapPgError(err, `target ${t.name}: reading tidemark.applied`, { target: t.name });
    }
    if (t.replication_origin !== false) {
      await setupOrigin(client, { source: this.#o.source, database: t.database, target: t.name, user: t.user });
      this.#origin = true;
    }
    return this.state;
  }

  /**
   * Applies entries until they end or the signal aborts, several source transactions per target transaction while
   * more are immediately available (README "Grouping and pipelining"). A group ends only at a source commit; at
   * the end (or on abort) a group that ends at a commit is committed, a cut source transaction rolled back.
   */
  async run(entries: AsyncIterable<JournalItem>, o: ApplyRunOptions): Promise<void> {
    const client = this.#client;
    if (!client) throw new Error('postgres applier: run() before open()');
    const b = this.#o.target.batch ?? BATCH_DEFAULTS; // a section built without the schema (tests)
    const isolate = o.isolateThroughLsn ?? -1n;
    const puller = new Puller(entries[Symbol.asyncIterator](), o.signal);
    let inTx = false;
    try {
      for (;;) {
        let r: IteratorResult<JournalItem> | 'timeout' | 'abort';
        const g = this.#group;
        if (g && !inTx) {
          if (g.ddl || groupDue(g, b, this.lastReadLsn <= isolate)) {
            await this.#commitGroup(client, o);
            continue;
          }
          r = await pullForGroup(puller, g, b);
          if (r === 'timeout') {
            await this.#commitGroup(client, o);
            continue;
          }
        } else r = await puller.next(null);
        if (r === 'timeout') continue;
        if (r === 'abort' || r.done) {
          if (this.#group && !inTx) await this.#commitGroup(client, o);
          break;
        }
        inTx = await this.#handle(client, r.value);
      }
    } catch (err) {
      await this.#rollback();
      throw wrapPgError(err, `target ${this.#o.target.name}: applying`, { target: this.#o.target.name });
    } finally {
      puller.close();
    }
    await this.#rollback(); // a transaction cut off by the end of the entries (stop) is not kept
  }

  /** Applies one entry into the open group; returns whether a source transaction is open afterwards. */
  async #handle(client: pg.Client, { lsn, entry }: JournalItem): Promise<boolean> {
    this.lastReadLsn = lsn;
    if (entry.source !== this.#o.source) {
      throw new TidemarkError(
        `target ${this.#o.target.name}: journal entry of source "${entry.source}", expected "${this.#o.source}"`,
        { code: 'APPLY_STATE' },
      );
    }
    if (this.state && entry.seq <= this.state.seq) return entry.kind !== 'commit'; // applied already (exactly once)
    const g = this.#ensureGroup();
    if (!this.#txOpen) {
      // A baseline unit may repeat rows of an unfinished earlier baseline: its inserts overwrite them.
      const last = g.target ?? this.state;
      this.#baselineUnit = last === null || last.phase === 'baseline' || entry.txId.startsWith('baseline:');
      this.#txOpen = true;
    }
    if (entry.kind === 'rows') {
      await this.#rows(client, entry);
      g.rows += entry.rows.length;
      return true;
    }
    if (entry.kind === 'ddl') {
      // Statement order: everything before the DDL goes out first.
      await this.#flush();
      if (this.#fromMysql) await this.#mysqlDdl(client, entry);
      else await this.#ddl(client, entry);
      g.ddl = true;
      return true;
    }
    g.txs++;
    // A later baseline's first chunk of a table has the same txId (`baseline:<table>:0`): it must clear again.
    this.#cleared = '';
    g.target = {
      seq: entry.seq,
      lsn,
      position: entry.position,
      commitTimeUs: entry.commitTimeUs,
      phase: entry.phase,
    };
    this.#txOpen = false;
    return false;
  }

  #ensureGroup(): Group {
    if (this.#group) return this.#group;
    // The transaction's first statements ride with its first query (pipeline.ts).
    this.#pipe!.prefix(['BEGIN', 'SET LOCAL session_replication_role = replica']);
    this.#group = { waitedMs: 0, txs: 0, rows: 0, target: null, ddl: false };
    return this.#group;
  }

  async #flush(): Promise<void> {
    const pipe = this.#pipe!;
    await pipe.queue(this.#batcher.drain());
    await pipe.flush();
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

  async #rows(client: pg.Client, e: RowsEntry): Promise<void> {
    const st = await this.#statementsFor(client, e);
    const rows = this.#fromMysql
      ? e.rows.map((r) => ({ before: this.#image(e, r.before), after: this.#image(e, r.after) }))
      : e.rows;
    if (this.#baselineUnit && !this.#fromMysql && e.txId !== this.#cleared && isFirstBaselineChunk(e.txId)) {
      // A table's first baseline chunk: rows an earlier, unfinished baseline left (and the source deleted since)
      // go first, in the same transaction; everything queued before goes out before it (statement order).
      this.#cleared = e.txId;
      await this.#pipe!.queue([...this.#batcher.drain(), clearTableStatement(st, e)]);
    }
    const ready = this.#batcher.push({ ...e, rows }, st, this.#baselineUnit);
    if (ready.length > 0) await this.#pipe!.queue(ready);
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

  /**
   * Commits the group: its remaining statements (checked), then in one query the position — guarded: a row moved by
   * another applier or held meanwhile divides by zero and nothing commits —, the origin's source commit, COMMIT.
   */
  async #commitGroup(client: pg.Client, o: ApplyRunOptions): Promise<void> {
    const g = this.#group;
    if (!g) return;
    const next = g.target;
    if (!next) return this.#rollback();
    const pipe = this.#pipe!;
    await pipe.queue(this.#batcher.drain());
    if (pipe.queued > 0) await pipe.flush();
    const store = inlineParams(storeSql, storeParams(this.#o.source, this.state, next));
    const sql = [
      ...pipe.takePrefix(),
      `WITH tidemark_store AS (${store} RETURNING 1) SELECT 1 / count(*) FROM tidemark_store`,
      ...(this.#origin ? [xactSetupSql(next)] : []),
      'COMMIT',
    ];
    try {
      await client.query(sql.join(';\n'));
    } catch (err) {
      if (sqlStateOf(err) !== '22012') throw err;
      throw new TidemarkError(
        `target ${this.#o.target.name}: tidemark.applied of source ${this.#o.source} moved or was held while ` +
          'applying (another applier, or a hold): this transaction was rolled back',
        { code: 'APPLY_STATE', retriable: true, cause: err },
      );
    }
    this.#group = null;
    this.state = next;
    this.#metrics.transactions(g.txs);
    this.#metrics.rows(g.rows);
    if (next.commitTimeUs !== null) this.#metrics.lastCommitTimeUs(next.commitTimeUs);
    this.#o.log.debug({ seq: `${next.seq}`, txs: g.txs, rows: g.rows }, 'applied');
    await o.onApplied?.(next);
  }

  async #rollback(): Promise<void> {
    this.#pipe?.clear();
    this.#batcher.reset();
    this.#txOpen = false;
    if (this.#group) await this.#client?.query('ROLLBACK').catch(() => {});
    this.#group = null;
  }

  async close(): Promise<void> {
    await this.#rollback();
    await this.#client?.end().catch(() => {});
    this.#client = null;
  }
}

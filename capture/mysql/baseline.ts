/**
 * Baseline: a consistent copy of every included table, handed to the sink as ordinary units, ending at the
 * binlog position streaming continues from (see snapshot.ts for how the snapshot and its position are taken,
 * and README.md).
 *
 * Output, in order, each unit = entries + one commit entry (phase "baseline", position = snapshot position):
 *   1. per schema:  ddl CREATE DATABASE IF NOT EXISTS …
 *   2. per table:   ddl DROP TABLE IF EXISTS …, ddl <SHOW CREATE TABLE text>
 *                   then its rows as `rows` insert entries of at most `rowsPerEntry` rows, grouped into units of
 *                   `chunkRows` rows. Rows are streamed from the server (bounded memory, never a whole table).
 *   3. the views, routines, triggers and events of the included schemas (baseline-objects.ts), then the users,
 *      roles and grants of `source.accounts` (baseline-accounts.ts), one unit of ddl entries (`tables` empty),
 *      read right after the tables were opened so a racing object or account DDL is seen too (ddlSince)
 *   4. one commit entry with phase "baseline-end", rowCount 0: the baseline is complete, resume from here.
 * Rows go through the same normalization as binlog rows (values.ts), so both paths yield identical values;
 * FLOAT columns are selected as CAST(col AS DOUBLE) because the server's text for FLOAT keeps 6 digits only,
 * ENUM columns as CONCAT(col + 0, ':', col) (the label alone cannot tell the invalid index 0 from a '' member),
 * MariaDB UUID/INET4/INET6 and spatial columns as CAST(col AS BINARY) (the binary form the binlog carries; for
 * geometry the stored SRID + WKB).
 * System-versioned tables (MariaDB) are read FOR SYSTEM_TIME ALL, history included, with their period columns
 * (hidden row_start/row_end too) and row_end appended to the primary key, as the binlog describes them
 * (record/versioning.ts). Versioning by transaction id (BIGINT UNSIGNED periods) is refused: those ids mean
 * nothing on another server.
 *
 * Before anything is copied, every included table is checked: one UNSUPPORTED_TYPE error lists all unfit tables.
 *
 * If the copy fails or is aborted midway, the unit in progress is closed with a commit so the journal holds
 * no dangling entries; the journal's last commit then has phase "baseline" and the next start re-takes the
 * whole baseline (every table is dropped and re-created, so a partial earlier copy does no harm).
 */
import type { Logger } from 'pino';
import type { RowDataPacket } from 'mysql2/promise';
import type { MysqlPosition } from '../../record/position.ts';
import type { CommitEntry, DdlEntry, Phase, RowImage, RowsEntry } from '../../record/record.ts';
import type { BaselineLedger, LedgerTable } from '../../engine/source.ts';
import { TidemarkError } from '../../core/errors.ts';
import { endpointOf, openSourceConnection, type SourceConnection, type SourceEndpoint } from './connection.ts';
import { sourceError } from './errors.ts';
import { ER_TABLE_DEF_CHANGED } from '../../mysql/errors.ts';
import { literalSchemas, type TableFilter } from '../../mysql/table-filter.ts';
import type { SinkWriter } from './sink-writer.ts';
import { ddlSince, type Snapshot, startSnapshot } from './snapshot.ts';
import { qualified } from '../../mysql/sql-text.ts';
import { quoteIdent } from '../../mysql/sql.ts';
import { declaredSrids, withRefSystemIds } from './spatial-ddl.ts';
import { sourceStatus } from './status.ts';
import { readTableShapes, type TableShape } from './table-shape.ts';
import { baselineEnumRaw, normalizeValue } from './values.ts';
import { readObjectStatements } from './baseline-objects.ts';
import { readAccountStatements } from './baseline-accounts.ts';
import { parseAccountList } from '../../mysql/accounts.ts';

export interface BaselineOptions {
  readonly source: SourceEndpoint & {
    readonly name: string;
    readonly include: readonly string[];
    readonly baseline: { readonly chunk_rows: number };
    /** source.accounts: copied with the objects (mysql/accounts.ts). */
    readonly accounts?: readonly string[];
  };
  readonly filter: TableFilter;
  readonly writer: SinkWriter;
  readonly log: Logger;
  /** Seq of the first entry; the result says where the next one goes. */
  readonly nextSeq: bigint;
  readonly signal: AbortSignal;
  /** Max rows per rows entry (default 500). */
  readonly rowsPerEntry?: number;
  /**
   * Every table's DROP + definition before any table's rows (table-copy.ts: a copy's DDL then has the same seqs
   * whatever the row counts). Default: table by table.
   */
  readonly definitionsFirst?: boolean;
  /** Copy the schema objects too (baseline-objects.ts): the whole baseline does, a table copy does not. */
  readonly objects?: boolean;
  /** Called once per table without a primary key (the caller logs once per table across restarts). */
  readonly onNoPrimaryKey?: (schema: string, table: string) => void;
  /**
   * A whole baseline's record of the tables it copies (engine/source.ts): tables an earlier unfinished baseline
   * recorded and this one does not copy are dropped (DROP TABLE IF EXISTS, before the baseline-end); cleared
   * once the baseline-end is durable.
   */
  readonly ledger?: BaselineLedger;
}

export interface BaselineResult {
  readonly position: MysqlPosition;
  readonly nextSeq: bigint;
  readonly tables: number;
  readonly rows: bigint;
  readonly method: Snapshot['method'];
  readonly lockMs: number;
}

interface TableToCopy {
  readonly schema: string;
  readonly table: string;
  readonly estimatedRows: number;
  /** information_schema.TABLES.TABLE_TYPE = 'SEQUENCE' (MariaDB): copied first, its state as its one row. */
  readonly sequence?: boolean;
  /** information_schema.TABLES.TABLE_TYPE = 'SYSTEM VERSIONED' (MariaDB). */
  readonly versioned: boolean;
}

/** One baseline attempt. Retriable failures (connection loss, DDL racing the snapshot) may simply be retried. */
export class Baseline {
  private readonly o: BaselineOptions;
  private readonly log: Logger;
  private seq: bigint;
  private snap: Snapshot | null = null;
  private unitRows = 0n;
  private totalRows = 0n;

  constructor(opts: BaselineOptions) {
    this.o = opts;
    this.log = opts.log;
    this.seq = opts.nextSeq;
  }

  get nextSeq(): bigint {
    return this.seq;
  }

  async run(): Promise<BaselineResult> {
    const ep = endpointOf(this.o.source);
    const conn = await openSourceConnection(this.o.source, 'baseline: connect');
    const onAbort = () => conn.raw.destroy();
    this.o.signal.addEventListener('abort', onAbort, { once: true });
    try {
      const result = await this.copy(conn);
      if (this.o.ledger) {
        await this.o.writer.drain(); // the baseline-end is durable: no later start re-takes this baseline
        await this.o.ledger.clear();
      }
      await conn.promise.query('COMMIT');
      return result;
    } catch (err) {
      await this.closeOpenUnit();
      if (this.o.signal.aborted) {
        throw new TidemarkError('baseline aborted', { code: 'ABORTED', retriable: false, cause: err });
      }
      throw sourceError(err, ep, 'baseline');
    } finally {
      this.o.signal.removeEventListener('abort', onAbort);
      conn.raw.destroy();
    }
  }

  private async copy(conn: SourceConnection): Promise<BaselineResult> {
    const c = conn.promise;
    // A slow journal pauses the result stream; do not let the server drop us after 60 s of backpressure.
    await c.query('SET SESSION net_write_timeout = 3600');
    const [[v]] = await c.query<RowDataPacket[]>('SELECT VERSION() AS v');
    const snap = await startSnapshot(c, String(v?.['v'] ?? ''), this.log);
    this.snap = snap;
    const tables = await this.listTables(conn);
    // Open every table inside the snapshot: the metadata locks keep their definitions fixed until we finish.
    for (const t of tables) {
      try {
        await c.query(`SELECT 1 FROM ${qualified(t)} LIMIT 0`);
      } catch (err) {
        if ((err as { errno?: number }).errno === ER_TABLE_DEF_CHANGED) throw this.raceError(`${t.schema}.${t.table}`);
        throw err;
      }
    }
    const schemas = await this.listSchemas(conn, tables);
    const accounts = this.o.objects ? (this.o.source.accounts ?? []) : [];
    const objects = [
      ...(this.o.objects ? await readObjectStatements(conn, this.o.filter, new Set(schemas), this.log) : []),
      ...(await readAccountStatements(conn, accounts)),
    ];
    const now = await sourceStatus(c);
    const ddl = await ddlSince(c, snap.position.binlog, now.binlog, this.o.filter, parseAccountList(accounts));
    if (ddl !== null) throw this.raceError(ddl);
    const shapes = await readTableShapes(conn, tables);
    const leftBehind = await this.recordTables(tables);

    for (const schema of schemas) {
      const [[row]] = await c.query<RowDataPacket[]>({
        sql: `SHOW CREATE DATABASE ${quoteIdent(schema)}`,
        rowsAsArray: true,
      });
      const text = String((row as unknown as unknown[])[1]).replace(
        /^CREATE DATABASE\s+/i,
        'CREATE DATABASE IF NOT EXISTS ',
      );
      await this.ddl(schema, [], text);
      await this.commitUnit('baseline');
    }
    if (this.o.definitionsFirst) {
      for (const t of tables) await this.copyDefinition(conn, t, shapes.get(t)!);
      for (const t of tables) await this.copyRows(conn, t, shapes.get(t)!);
    } else {
      for (const t of tables) {
        await this.copyDefinition(conn, t, shapes.get(t)!);
        await this.copyRows(conn, t, shapes.get(t)!);
      }
    }
    await this.dropLeftBehind(leftBehind);
    for (const o of objects) await this.ddl(o.schema, [], o.sql);
    if (objects.length > 0) await this.commitUnit('baseline');
    await this.commitUnit('baseline-end');
    this.log.info(
      {
        tables: tables.length,
        objectStatements: objects.length,
        rows: this.totalRows.toString(),
        method: snap.method,
        lockMs: snap.lockMs,
      },
      'baseline complete',
    );
    return {
      position: snap.position,
      nextSeq: this.seq,
      tables: tables.length,
      rows: this.totalRows,
      method: snap.method,
      lockMs: snap.lockMs,
    };
  }

  /**
   * Records this baseline's tables in the ledger (before any DDL of theirs is journaled) and returns the tables an
   * unfinished earlier baseline recorded that this one does not copy.
   */
  private async recordTables(tables: readonly TableToCopy[]): Promise<LedgerTable[]> {
    const ledger = this.o.ledger;
    if (!ledger) return [];
    const copied = new Set(tables.map((t) => JSON.stringify([t.schema, t.table])));
    const earlier = await ledger.tables();
    await ledger.record(tables.map((t) => ({ schema: t.schema, table: t.table })));
    return earlier.filter((t) => !copied.has(JSON.stringify([t.schema, t.table])));
  }

  /**
   * An unfinished baseline may have created these tables on the targets; they are no longer included under that
   * name (renamed or dropped meanwhile), so nothing else would remove them.
   */
  private async dropLeftBehind(tables: readonly LedgerTable[]): Promise<void> {
    if (tables.length === 0) return;
    // Schema "": no USE of a schema that may be gone too (the statement names it).
    for (const t of tables) await this.ddl('', [t], `DROP TABLE IF EXISTS ${qualified(t)}`);
    await this.commitUnit('baseline');
    this.log.warn(
      { tables: tables.map((t) => `${t.schema}.${t.table}`) },
      'tables an unfinished baseline copied are gone from the included set: dropped on the targets',
    );
  }

  private raceError(what: string): TidemarkError {
    return new TidemarkError(`DDL (${what}) on an included table raced the baseline snapshot; starting over`, {
      code: 'BASELINE_RACE',
      retriable: true,
    });
  }

  private async listTables(conn: SourceConnection): Promise<TableToCopy[]> {
    const [rows] = await conn.promise.query<RowDataPacket[]>(
      'SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t, TABLE_ROWS AS n, TABLE_TYPE AS k FROM information_schema.TABLES ' +
        "WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED', 'SEQUENCE') " +
        // Sequences first: a table's DEFAULT NEXTVAL(seq) needs the sequence to exist when it is created.
        "ORDER BY TABLE_TYPE = 'SEQUENCE' DESC, TABLE_SCHEMA, TABLE_NAME",
    );
    return rows
      .map((r) => ({
        schema: String(r['s']),
        table: String(r['t']),
        estimatedRows: Number(r['n'] ?? 0),
        versioned: String(r['k']) === 'SYSTEM VERSIONED',
        sequence: String(r['k']) === 'SEQUENCE',
      }))
      .filter((t) => this.o.filter.includesTable(t.schema, t.table));
  }

  /** Schemas with included tables, plus existing (maybe empty) ones the include patterns name literally. */
  private async listSchemas(conn: SourceConnection, tables: readonly TableToCopy[]): Promise<string[]> {
    const out = new Set(tables.map((t) => t.schema));
    const literal = literalSchemas(this.o.source.include);
    if (literal.length > 0) {
      const [rows] = await conn.promise.query<RowDataPacket[]>(
        `SELECT SCHEMA_NAME AS s FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN (${literal.map(() => '?').join(',')})`,
        literal,
      );
      for (const r of rows) if (this.o.filter.includesSchema(String(r['s']))) out.add(String(r['s']));
    }
    return [...out].sort();
  }

  /** DROP TABLE IF EXISTS + the table's definition (spatial columns' SRIDs put back: spatial-ddl.ts), as one unit. */
  private async copyDefinition(conn: SourceConnection, t: TableToCopy, shape: TableShape): Promise<void> {
    const name = qualified(t);
    const [[created]] = await conn.promise.query<RowDataPacket[]>({
      // A sequence's SHOW CREATE TABLE is a plain table with SEQUENCE=1; SHOW CREATE SEQUENCE is its own DDL.
      sql: `SHOW CREATE ${t.sequence ? 'SEQUENCE' : 'TABLE'} ${name}`,
      rowsAsArray: true,
    });
    await this.ddl(t.schema, [{ schema: t.schema, table: t.table }], `DROP TABLE IF EXISTS ${name}`);
    let sql = String((created as unknown as unknown[])[1]);
    if (shape.specs.some((c) => c.kind === 'geometry')) sql = withRefSystemIds(sql, await declaredSrids(conn, t));
    await this.ddl(t.schema, [{ schema: t.schema, table: t.table }], sql);
    await this.commitUnit('baseline');
  }

  private async copyRows(conn: SourceConnection, t: TableToCopy, shape: TableShape): Promise<void> {
    const name = qualified(t);
    const { specs, pk, select } = shape;
    if (pk.length === 0 && !t.sequence) this.o.onNoPrimaryKey?.(t.schema, t.table);
    const columns = specs.map((s) => s.column);
    const perEntry = this.o.rowsPerEntry ?? 500;
    const chunk = BigInt(this.o.source.baseline.chunk_rows);
    const started = Date.now();
    let lastLog = started;
    let done = 0n;
    let batch: RowImage[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const entry: RowsEntry = {
        kind: 'rows',
        source: this.o.source.name,
        seq: this.seq,
        txId: this.txId(),
        schema: t.schema,
        table: t.table,
        op: 'insert',
        columns,
        pk,
        rows: batch,
      };
      this.seq += BigInt(batch.length);
      this.unitRows += BigInt(batch.length);
      batch = [];
      await this.o.writer.append(entry);
      if (this.unitRows >= chunk) await this.commitUnit('baseline');
    };

    const all = shape.period ? ' FOR SYSTEM_TIME ALL' : '';
    const stream = conn.raw
      .query({ sql: `SELECT ${select.join(', ')} FROM ${name}${all}`, rowsAsArray: true })
      .stream();
    for await (const raw of stream as AsyncIterable<unknown[]>) {
      const after = new Array(specs.length);
      for (let i = 0; i < specs.length; i++) {
        const spec = specs[i]!;
        after[i] = normalizeValue(spec, spec.kind === 'enum' ? baselineEnumRaw(raw[i]) : raw[i]);
      }
      batch.push({ before: null, after });
      done++;
      const room = Number(chunk - this.unitRows) - batch.length;
      if (batch.length >= perEntry || room <= 0) await flush();
      if (Date.now() - lastLog >= 5000) {
        lastLog = Date.now();
        this.log.info(
          { table: `${t.schema}.${t.table}`, rows: done.toString(), estimated: t.estimatedRows },
          'baseline progress',
        );
      }
    }
    await flush();
    if (this.unitRows > 0n) await this.commitUnit('baseline');
    this.totalRows += done;
    this.log.info(
      { table: `${t.schema}.${t.table}`, rows: done.toString(), estimated: t.estimatedRows, ms: Date.now() - started },
      'baseline table copied',
    );
  }

  private txId(): string {
    const p = this.snap?.position.binlog;
    return p ? `baseline:${p.file}:${p.offset}` : 'baseline';
  }

  private async ddl(schema: string, tables: DdlEntry['tables'], sql: string): Promise<void> {
    const entry: DdlEntry = {
      kind: 'ddl',
      source: this.o.source.name,
      seq: this.seq,
      txId: this.txId(),
      schema,
      tables,
      sql,
    };
    this.seq += 1n;
    await this.o.writer.append(entry);
  }

  private async commitUnit(phase: Phase): Promise<void> {
    const snap = this.snap;
    if (!snap) return;
    const entry: CommitEntry = {
      kind: 'commit',
      source: this.o.source.name,
      seq: this.seq,
      txId: this.txId(),
      position: snap.position,
      commitTimeUs: snap.timeUs,
      captureTimeUs: BigInt(Date.now()) * 1000n,
      rowCount: phase === 'baseline-end' ? 0n : this.unitRows,
      phase,
    };
    this.seq += 1n;
    this.unitRows = 0n;
    await this.o.writer.commit(entry);
  }

  /** After a failure: commit whatever the open unit holds, unless the sink itself is what failed. */
  private async closeOpenUnit(): Promise<void> {
    if (this.o.writer.failed || this.o.writer.openEntries === 0) return;
    try {
      await this.commitUnit('baseline');
    } catch {
      // The sink error surfaces through the writer on the next use.
    }
  }
}

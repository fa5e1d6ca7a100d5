/**
 * Checksum verification of source vs replica, table by table (SQL in checksum.ts; algorithm in README.md).
 *
 * With a primary key the source's keys cut the table into chunks of `chunkRows` rows (keyset walk); each chunk's
 * COUNT and XOR of row hashes are computed on both servers over the same key range. Chunks that differ may be
 * re-checked after the caller's delay (the source may still be changing); those still different are compared
 * row by row and the differing keys listed: missing on the replica, extra on the replica, changed.
 * Without a primary key the whole table is one chunk (COUNT and SUM of row hashes); no keys can be listed.
 *
 * Which tables: `tables`, plus (with `includes`) every table of either server the include set covers, so a table
 * that exists on one side only is listed as a difference ("table not found on the replica/source"), never left out.
 * System-versioned tables are compared over all their rows, history included, with their period columns
 * (checksum.ts): the hidden row_start/row_end are added here, and row_end is appended to the key as the server does.
 */
import type mysql from 'mysql2/promise';
import type { Logger } from 'pino';
import { silentLogger } from '../../core/log.ts';
import { TidemarkError } from '../../core/errors.ts';
import type { Difference, DifferenceKind, TableResult, VerifyResult } from '../../engine/target.ts';
import type { Value } from '../../record/record.ts';
import {
  type Aggregate,
  asColumn,
  boundarySql,
  chunkChecksumSql,
  columnsSql,
  keyText,
  primaryKeySql,
  rowHashesSql,
  shapeDifference,
  type TableColumn,
  type TableRef,
  type TableShape,
} from './checksum.ts';
import { wrapDbError } from './errors.ts';
import { type MysqlEndpoint, openSession } from '../../mysql/session.ts';
import { qualified } from '../../mysql/sql.ts';
import { fromDriver } from './values.ts';
import { tablePeriod } from './versioned.ts';
import { verifyAccounts } from './verify-accounts.ts';
import { type ObjectFilter, verifyObjects } from './verify-objects.ts';

export interface VerifyOptions {
  readonly source: MysqlEndpoint;
  readonly replica: MysqlEndpoint;
  readonly tables: readonly TableRef[];
  /**
   * When given, every base or system-versioned table of either server this accepts is compared too (tables on one
   * side only are reported as differences).
   */
  readonly includes?: (schema: string, table: string) => boolean;
  /** Also compare the schema objects these cover (verify-objects.ts); absent: tables only. */
  readonly objects?: ObjectFilter;
  /** With `objects`: also compare these accounts (source.accounts; verify-accounts.ts). */
  readonly accounts?: readonly string[];
  /** Rows per chunk (default 1000). */
  readonly chunkRows?: number;
  /** Differences listed per table (default 100); all are counted. */
  readonly maxDifferences?: number;
  /** Re-check differing chunks: up to `attempts` times, calling `delay(attempt)` before each. */
  readonly recheck?: { readonly attempts: number; readonly delay: (attempt: number) => Promise<void> };
  readonly log?: Logger;
  readonly signal?: AbortSignal;
}

/** The result shapes are the engine seam's (engine/target.ts): every engine's verify reports alike. */
export type { Difference, DifferenceKind, TableResult, VerifyResult };

interface Sum {
  n: number;
  a: string;
  b: string;
}

type Bound = readonly Value[] | null;

async function rowsOf(conn: mysql.Connection, sql: string, what: string): Promise<mysql.RowDataPacket[]> {
  try {
    const [rows] = await conn.query<mysql.RowDataPacket[]>(sql);
    return rows;
  } catch (err) {
    throw wrapDbError(err, what);
  }
}

async function shapeOf(conn: mysql.Connection, t: TableRef): Promise<TableShape> {
  const what = `reading the columns of ${qualified(t.schema, t.table)}`;
  const cols = await rowsOf(conn, columnsSql(t), what);
  const pkRows = await rowsOf(conn, primaryKeySql(t), what);
  const columns: TableColumn[] = cols.map((r) => ({
    name: String(r['name']),
    dataType: String(r['data_type']),
    columnType: String(r['column_type']),
    collation: r['collation'] === null ? null : String(r['collation']),
  }));
  const pk = pkRows.map((r) => String(r['name']));
  const period = await tablePeriod((sql) => rowsOf(conn, sql, what), t.schema, t.table);
  if (!period) return { ...t, columns, pk };
  if (period.implicit) {
    for (const name of [period.start, period.end]) {
      columns.push({ name, dataType: 'timestamp', columnType: 'timestamp(6)', collation: null });
    }
  }
  if (pk.length > 0 && !pk.includes(period.end)) pk.push(period.end);
  return { ...t, columns, pk, versioned: true };
}

/** Base and system-versioned tables of one server that `includes` accepts. */
async function listTables(conn: mysql.Connection, includes: (s: string, t: string) => boolean): Promise<TableRef[]> {
  const rows = await rowsOf(
    conn,
    'SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t FROM information_schema.TABLES ' +
      "WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY 1, 2",
    'listing tables',
  );
  return rows
    .map((r) => ({ schema: String(r['s']), table: String(r['t']) }))
    .filter((t) => includes(t.schema, t.table));
}

/** `given` plus both servers' included tables, each once, sorted. */
async function tablesToCompare(
  src: mysql.Connection,
  rep: mysql.Connection,
  given: readonly TableRef[],
  includes: VerifyOptions['includes'],
): Promise<TableRef[]> {
  const all = [...given];
  if (includes) all.push(...(await listTables(src, includes)), ...(await listTables(rep, includes)));
  const byName = new Map<string, TableRef>();
  for (const t of all) byName.set(JSON.stringify([t.schema, t.table]), { schema: t.schema, table: t.table });
  return [...byName.values()].sort((a, b) =>
    a.schema === b.schema ? (a.table < b.table ? -1 : 1) : a.schema < b.schema ? -1 : 1,
  );
}

class TableVerifier {
  readonly #src: mysql.Connection;
  readonly #rep: mysql.Connection;
  readonly #s: TableShape;
  readonly #o: VerifyOptions;
  readonly #chunkRows: number;
  readonly #max: number;
  readonly #diffs: Difference[] = [];
  #count = 0;

  constructor(src: mysql.Connection, rep: mysql.Connection, s: TableShape, o: VerifyOptions) {
    this.#src = src;
    this.#rep = rep;
    this.#s = s;
    this.#o = o;
    this.#chunkRows = Math.max(1, o.chunkRows ?? 1000);
    this.#max = o.maxDifferences ?? 100;
  }

  async run(): Promise<TableResult> {
    const s = this.#s;
    const agg: Aggregate = s.pk.length ? 'xor' : 'sum';
    const chunks: { lower: Bound; upper: Bound }[] = [];
    let rows = 0;
    let replicaRows = 0;
    let differing: { lower: Bound; upper: Bound }[] = [];
    let lower: Bound = null;
    for (;;) {
      this.#checkAbort();
      const upper: Bound = s.pk.length ? await this.#boundary(lower) : null;
      const [a, b] = await this.#sums(lower, upper, agg);
      rows += a.n;
      replicaRows += b.n;
      chunks.push({ lower, upper });
      if (!same(a, b)) differing.push({ lower, upper });
      if (upper === null) break;
      lower = upper;
    }
    const attempts = this.#o.recheck?.attempts ?? 0;
    for (let attempt = 1; attempt <= attempts && differing.length > 0; attempt++) {
      await this.#o.recheck!.delay(attempt);
      const still: typeof differing = [];
      for (const c of differing) {
        this.#checkAbort();
        const [a, b] = await this.#sums(c.lower, c.upper, agg);
        if (!same(a, b)) still.push(c);
      }
      this.#o.log?.debug({ table: qualified(s.schema, s.table), attempt, differing: still.length }, 'recheck');
      differing = still;
    }
    if (s.pk.length) for (const c of differing) await this.#rowDiff(c.lower, c.upper);
    const equal = differing.length === 0;
    return {
      schema: s.schema,
      table: s.table,
      chunks: chunks.length,
      rows,
      replicaRows,
      equal,
      differences: this.#diffs,
      differenceCount: s.pk.length ? this.#count : equal ? 0 : Math.max(1, Math.abs(rows - replicaRows)),
      ...(s.pk.length ? {} : { noPrimaryKey: true }),
    };
  }

  #checkAbort(): void {
    if (this.#o.signal?.aborted) throw new TidemarkError('verify aborted', { code: 'ABORTED' });
  }

  #key(r: mysql.RowDataPacket): Value[] {
    return this.#s.pk.map((n) => {
      const c = this.#s.columns.find((x) => x.name === n)!;
      return fromDriver(r[n], asColumn(c));
    });
  }

  async #boundary(lower: Bound): Promise<Bound> {
    const s = this.#s;
    const rows = await rowsOf(this.#src, boundarySql(s, lower, this.#chunkRows), 'reading chunk boundaries');
    return rows[0] ? this.#key(rows[0]) : null;
  }

  async #sums(lower: Bound, upper: Bound, agg: Aggregate): Promise<[Sum, Sum]> {
    const sql = chunkChecksumSql(this.#s, lower, upper, agg);
    const what = `checksum of ${qualified(this.#s.schema, this.#s.table)}`;
    const [a, b] = await Promise.all([rowsOf(this.#src, sql, what), rowsOf(this.#rep, sql, what)]);
    return [toSum(a[0]), toSum(b[0])];
  }

  /** Lists differing keys in (lower, upper], paging through the replica so an excess there stays bounded. */
  async #rowDiff(lower: Bound, upper: Bound): Promise<void> {
    const s = this.#s;
    const page = this.#chunkRows;
    let cur = lower;
    for (;;) {
      this.#checkAbort();
      const rep = await rowsOf(this.#rep, rowHashesSql(s, cur, upper, page), 'reading replica row hashes');
      const last = rep.length === page ? rep[rep.length - 1] : undefined;
      const pageUpper = last ? this.#key(last) : upper;
      const src = await rowsOf(this.#src, rowHashesSql(s, cur, pageUpper, null), 'reading source row hashes');
      const repBy = new Map<string, { pk: Value[]; h: string }>();
      for (const r of rep) {
        const pk = this.#key(r);
        repBy.set(keyText(s, pk), { pk, h: String(r['tidemark_row_hash']) });
      }
      for (const r of src) {
        const pk = this.#key(r);
        const k = keyText(s, pk);
        const other = repBy.get(k);
        if (!other) this.#add(pk, k, 'missing');
        else if (other.h !== String(r['tidemark_row_hash'])) this.#add(pk, k, 'changed');
        repBy.delete(k);
      }
      for (const [k, v] of repBy) this.#add(v.pk, k, 'extra');
      if (!last) return;
      cur = pageUpper;
    }
  }

  #add(pk: Value[], key: string, kind: DifferenceKind): void {
    this.#count++;
    if (this.#diffs.length < this.#max) this.#diffs.push({ pk, key, kind });
  }
}

function toSum(r: mysql.RowDataPacket | undefined): Sum {
  return { n: Number(r?.['n'] ?? 0), a: String(r?.['a'] ?? '0'), b: String(r?.['b'] ?? '0') };
}

function same(x: Sum, y: Sum): boolean {
  return x.n === y.n && x.a === y.a && x.b === y.b;
}

/** Compares every table of `opts.tables` between source and replica. */
export async function verifyTables(opts: VerifyOptions): Promise<VerifyResult> {
  const log = (opts.log ?? silentLogger).child({ component: 'verify' });
  const src = await openSession(opts.source, { apply: false });
  let rep: mysql.Connection | null = null;
  try {
    rep = await openSession(opts.replica, { apply: false });
    const tables: TableResult[] = [];
    for (const t of await tablesToCompare(src, rep, opts.tables, opts.includes)) {
      const [a, b] = await Promise.all([shapeOf(src, t), shapeOf(rep, t)]);
      const why = shapeDifference(a, b);
      let res: TableResult;
      if (why) {
        res = {
          ...t,
          chunks: 0,
          rows: 0,
          replicaRows: 0,
          equal: false,
          differences: [],
          differenceCount: 0,
          columnsDiffer: why,
        };
      } else {
        res = await new TableVerifier(src, rep, a, opts).run();
      }
      log.info(
        { table: qualified(t.schema, t.table), equal: res.equal, chunks: res.chunks, differences: res.differenceCount },
        'table verified',
      );
      tables.push(res);
    }
    if (!opts.objects) return { tables, equal: tables.every((t) => t.equal) };
    const objects = [
      ...(await verifyObjects(src, rep, opts.objects)),
      ...(await verifyAccounts(src, rep, opts.accounts ?? [])),
    ];
    log.info({ objects: objects.length, differ: objects.filter((o) => !o.equal).length }, 'schema objects verified');
    return { tables, objects, equal: tables.every((t) => t.equal) && objects.every((o) => o.equal) };
  } finally {
    src.destroy();
    rep?.destroy();
  }
}

/**
 * Helpers for capture's integration tests (test/it/capture*.it.test.ts): an in-memory EntrySink, a source
 * config builder, a tiny in-memory applier that rebuilds tables from entries, and a reader that SELECTs a table
 * the way the baseline does. Not used by production code.
 */
import { Writable } from 'node:stream';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { pino, type Logger } from 'pino';
import type { ResolvedEndpoint } from '../../core/secret.ts';
import type { SourceConfig } from './config.ts';
import type { CommitEntry, DdlEntry, Entry, EntrySink, RowsEntry, Value } from '../../record/record.ts';
import { classifyStatement } from './ddl.ts';
import { columnSpec, normalizeValue } from './values.ts';

export interface MemorySinkOptions {
  /** Keep rows entries (false: count rows only, for memory tests). */
  readonly keepRows?: boolean;
  /** Await this many ms on every n-th append (backpressure). */
  readonly appendDelayMs?: number;
  readonly appendDelayEvery?: number;
}

export class MemorySink implements EntrySink {
  readonly entries: Entry[] = [];
  readonly commits: CommitEntry[] = [];
  rowCount = 0;
  appended = 0;
  /** Current append delay (starts from the options; tests may change it). */
  appendDelayMs: number;
  private readonly opts: MemorySinkOptions;
  private listeners: (() => void)[] = [];

  constructor(opts: MemorySinkOptions = {}) {
    this.opts = opts;
    this.appendDelayMs = opts.appendDelayMs ?? 0;
  }

  async append(entry: RowsEntry | DdlEntry): Promise<void> {
    this.appended++;
    if (entry.kind === 'rows') this.rowCount += entry.rows.length;
    if (this.opts.keepRows !== false || entry.kind === 'ddl') this.entries.push(entry);
    const every = this.opts.appendDelayEvery ?? 1;
    if (this.appendDelayMs > 0 && this.appended % every === 0) {
      await new Promise((r) => setTimeout(r, this.appendDelayMs));
    }
  }

  async commit(entry: CommitEntry): Promise<void> {
    this.entries.push(entry);
    this.commits.push(entry);
    for (const l of this.listeners.splice(0)) l();
  }

  /** Resolves when `pred` holds for the commits so far (checked at every commit). */
  async waitFor(pred: (commits: readonly CommitEntry[]) => boolean, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.commits)) {
      if (Date.now() > deadline) throw new Error(`MemorySink.waitFor timed out after ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        this.listeners.push(r);
        setTimeout(r, 200);
      });
    }
  }

  /** Entries up to and including the last commit (what a journal reader would see). */
  committed(): Entry[] {
    const last = this.entries.findLastIndex((e) => e.kind === 'commit');
    return this.entries.slice(0, last + 1);
  }
}

export function sourceConfig(
  port: number,
  over: Partial<SourceConfig> & { password?: string } = {},
): ResolvedEndpoint<SourceConfig> {
  const { password = 'cap-pw', ...rest } = over;
  const src = {
    host: '127.0.0.1',
    port,
    user: 'tidemark_cap',
    connect_timeout_ms: 5_000,
    name: 'src',
    kind: 'mysql' as const,
    server_id: 4242,
    include: ['app.*'],
    exclude: [],
    baseline: { chunk_rows: 5000 },
    ...rest,
  };
  Object.defineProperty(src, 'password', { value: password, enumerable: false });
  return src as ResolvedEndpoint<SourceConfig>;
}

/** A pino logger whose lines (parsed JSON) land in `lines`. */
export function memoryLogger(level = 'debug'): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const dest = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level }, dest), lines };
}

export function valueKey(v: Value): string {
  if (v === null) return 'N';
  if (typeof v === 'bigint') return `i${v}`;
  if (typeof v === 'number') return `f${v}`;
  if (typeof v === 'string') return `s${JSON.stringify(v)}`;
  return `b${Buffer.from(v).toString('hex')}`;
}

export type Row = Record<string, Value>;

/** Rebuilds tables from committed entries, keyed by pk (or by the full row without one). */
export class MemoryReplica {
  readonly tables = new Map<string, Map<string, Row>>();

  private key(e: RowsEntry, values: readonly Value[]): string {
    const idx = e.pk.length ? e.pk.map((c) => e.columns.findIndex((x) => x.name === c)) : e.columns.map((_, i) => i);
    return idx.map((i) => valueKey(values[i] ?? null)).join('|');
  }

  private row(e: RowsEntry, values: readonly Value[]): Row {
    const r: Row = {};
    e.columns.forEach((c, i) => {
      r[c.name] = values[i] ?? null;
    });
    return r;
  }

  private table(name: string): Map<string, Row> {
    let t = this.tables.get(name);
    if (!t) {
      t = new Map();
      this.tables.set(name, t);
    }
    return t;
  }

  apply(entries: readonly Entry[]): void {
    for (const e of entries) {
      if (e.kind === 'rows') {
        const t = this.table(`${e.schema}.${e.table}`);
        for (const r of e.rows) {
          if (r.before) {
            // Without a key, identical rows are stored as k, k+, k++ …: delete any one of them.
            let k = this.key(e, r.before);
            while (!t.delete(k) && e.pk.length === 0 && k.length < 10_000) k += '+';
          }
          if (r.after) {
            let k = this.key(e, r.after);
            if (e.pk.length === 0) while (t.has(k)) k += '+';
            t.set(k, this.row(e, r.after));
          }
        }
      } else if (e.kind === 'ddl') {
        const c = classifyStatement(e.sql, e.schema);
        if (c.kind !== 'table-ddl') continue;
        const names = c.tables.map((x) => `${x.schema}.${x.table}`);
        if (c.statement === 'DROP TABLE' || c.statement === 'TRUNCATE TABLE')
          for (const n of names) this.tables.delete(n);
        if (c.statement === 'CREATE TABLE') this.tables.set(names[0]!, new Map());
        if (c.statement === 'RENAME TABLE' || (c.statement === 'ALTER TABLE' && names.length === 2)) {
          for (let i = 0; i + 1 < names.length; i += 2) {
            const t = this.tables.get(names[i]!);
            this.tables.delete(names[i]!);
            if (t) this.tables.set(names[i + 1]!, t);
          }
        }
      }
    }
  }

  /** Rows of a table, sorted by their key, as comparable strings. */
  dump(name: string): string[] {
    return [...(this.tables.get(name)?.values() ?? [])].map(rowKey).sort();
  }
}

export function rowKey(r: Row): string {
  return Object.keys(r)
    .sort()
    .map((k) => `${k}=${valueKey(r[k] ?? null)}`)
    .join(',');
}

/** SELECTs a table with the baseline's normalization (FLOAT via CAST AS DOUBLE), as Row objects. */
export async function selectRows(conn: Connection, schema: string, table: string, where = ''): Promise<Row[]> {
  const [cols] = await conn.query<RowDataPacket[]>(
    'SELECT COLUMN_NAME AS n, COLUMN_TYPE AS ct FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
    [schema, table],
  );
  const specs = cols.map((c) => columnSpec(String(c['n']), String(c['ct'])));
  const q = (n: string) => '`' + n.replaceAll('`', '``') + '`';
  const list = specs.map((s) => (s.kind === 'float' ? `CAST(${q(s.name)} AS DOUBLE)` : q(s.name))).join(', ');
  const [rows] = await conn.query({ sql: `SELECT ${list} FROM ${q(schema)}.${q(table)} ${where}`, rowsAsArray: true });
  return (rows as unknown[][]).map((r) => {
    const out: Row = {};
    specs.forEach((s, i) => {
      out[s.name] = normalizeValue(s, r[i]);
    });
    return out;
  });
}

export function rowsEntries(entries: readonly Entry[], table?: string): RowsEntry[] {
  return entries.filter((e): e is RowsEntry => e.kind === 'rows' && (table === undefined || e.table === table));
}

/** Checks the seq discipline: contiguous from `first`, rows entries taking one seq per row. */
export function checkSeqs(entries: readonly Entry[], first: bigint): void {
  let next = first;
  for (const e of entries) {
    if (e.seq !== next) throw new Error(`seq gap: expected ${next}, got ${e.seq} (${e.kind})`);
    next += e.kind === 'rows' ? BigInt(e.rows.length) : 1n;
  }
}

/**
 * The errors capture stops with when the binlog holds changes it cannot turn into rows (assembler.ts), and the
 * XA id helpers they need. Pure.
 *
 *   STATEMENT_DML   a DML statement on an included table was logged as SQL text (binlog_format STATEMENT or
 *                   MIXED in some session): its row changes are not in the binlog
 *   CROSS_SCHEMA_DDL  a table DDL across the include boundary that no statement on the targets can reproduce
 *   UNSUPPORTED_XA  an XA transaction prepared (XA PREPARE) changes included tables: tidemark does not hold
 *                   prepared changes until XA COMMIT
 *
 * Both are not retriable and name the table(s), the binlog position and the way out. Messages carry keyword
 * labels and names only, never statement text (it may hold secrets).
 */
import type { TableRef } from './ddl.ts';
import { TidemarkError } from '../../core/errors.ts';

function printable(b: Uint8Array): boolean {
  for (const c of b) if (c < 0x20 || c > 0x7e || c === 0x27 || c === 0x5c) return false;
  return true;
}

function part(b: Uint8Array): string {
  return printable(b) ? `'${Buffer.from(b).toString('latin1')}'` : `X'${Buffer.from(b).toString('hex')}'`;
}

/** An XID as XA statements spell it: 'gtrid' or 'gtrid','bqual',formatID (MariaDB's defaults: '' and 1). */
export function formatXid(gtrid: Uint8Array, bqual: Uint8Array, formatId: number): string {
  if (bqual.length === 0 && formatId === 1) return part(gtrid);
  return `${part(gtrid)},${part(bqual)},${formatId}`;
}

/**
 * The verb and the XID of an XA statement ("XA COMMIT X'7831',X'',1" → COMMIT, 'x1'). The XID is rebuilt from
 * its literals, so nothing else of the text leaks into messages.
 */
export function xidOfStatement(sql: string): { verb: string; xid: string } {
  const m = /^\s*XA\s+(\w+)\s*(.*)$/is.exec(sql);
  const verb = (m?.[1] ?? '').toUpperCase();
  const rest = m?.[2] ?? '';
  const lits: Uint8Array[] = [];
  let formatId = 1;
  const re = /\s*(?:[xX]'([0-9a-fA-F]*)'|'((?:[^'\\]|''|\\.)*)'|(\d+))\s*,?/y;
  for (let r = re.exec(rest); r; r = re.exec(rest)) {
    if (r[1] !== undefined) lits.push(Buffer.from(r[1], 'hex'));
    else if (r[2] !== undefined) lits.push(Buffer.from(r[2].replaceAll("''", "'"), 'utf8'));
    else if (r[3] !== undefined) formatId = Number(r[3]);
    if (re.lastIndex >= rest.length) break;
  }
  const xid = lits.length === 0 ? '?' : formatXid(lits[0]!, lits[1] ?? new Uint8Array(), formatId);
  return { verb, xid };
}

function where(file: string, offset: bigint, gtid: string | null): string {
  return `${file}:${offset}${gtid ? ` (GTID ${gtid})` : ''}`;
}

export interface StatementDmlFacts {
  /** Keyword label: 'UPDATE', 'INSERT … SELECT', 'LOAD DATA', … */
  readonly statement: string;
  /** Included tables it writes; empty when they could not be told (then `schema` is the included default). */
  readonly tables: readonly TableRef[];
  readonly schema: string;
  readonly file: string;
  /** Start of the statement's event. */
  readonly offset: bigint;
  readonly gtid: string | null;
}

export function statementDmlError(f: StatementDmlFacts): TidemarkError {
  const names = f.tables.map((t) => `${t.schema}.${t.table}`);
  const what = names.length > 0 ? `on ${names.join(', ')}` : `with default schema ${f.schema} (target not known)`;
  return new TidemarkError(
    `statement-logged ${f.statement} ${what} in the binlog at ${where(f.file, f.offset, f.gtid)}: a session ` +
      'wrote it with binlog_format=STATEMENT or MIXED, so its row changes are not in the binlog and capture ' +
      'cannot journal them (nothing was skipped: capture stops here). Fix: SET GLOBAL binlog_format=ROW and in ' +
      'the server config, and make every session use ROW (reconnect clients; no SET SESSION binlog_format); ' +
      'then `tidemark run --rebaseline` re-copies the included tables from a new snapshot past this statement ' +
      '(or exclude the table in source.exclude and restart, giving up its copy)',
    {
      code: 'STATEMENT_DML',
      retriable: false,
      context: {
        statement: f.statement,
        tables: names.join(',') || undefined,
        file: f.file,
        offset: f.offset,
        gtid: f.gtid ?? undefined,
      },
    },
  );
}

export interface XaFacts {
  readonly xid: string;
  readonly tables: readonly string[];
  readonly file: string;
  /** Start of the XA PREPARE group. */
  readonly offset: bigint;
  readonly gtid: string | null;
}

export function xaIncludedError(f: XaFacts): TidemarkError {
  const tables = [...f.tables].sort();
  return new TidemarkError(
    `XA transaction ${f.xid} prepared at ${where(f.file, f.offset, f.gtid)} changes included table(s) ` +
      `${tables.join(', ')}: tidemark does not capture two-phase XA transactions on included tables (their ` +
      'changes are logged at XA PREPARE, before the outcome is known). Way out: resolve it on the source ' +
      `(XA COMMIT ${f.xid} or XA ROLLBACK ${f.xid}), then \`tidemark run --rebaseline\` to re-copy the included ` +
      'tables past it; or exclude these tables in source.exclude and restart. Use ordinary transactions (or ' +
      'XA COMMIT … ONE PHASE) for included tables',
    {
      code: 'UNSUPPORTED_XA',
      retriable: false,
      context: { xid: f.xid, tables: tables.join(','), file: f.file, offset: f.offset, gtid: f.gtid ?? undefined },
    },
  );
}

export interface CrossDdlFacts {
  /** Why it cannot be journaled (ddl-rewrite.ts `refuse`). */
  readonly reason: string;
  readonly tables: readonly TableRef[];
  readonly file: string;
  readonly offset: bigint;
  readonly gtid: string | null;
}

export function crossSchemaDdlError(f: CrossDdlFacts): TidemarkError {
  const names = f.tables.map((t) => `${t.schema}.${t.table}`);
  return new TidemarkError(
    `${f.reason}: ${names.join(', ')} in the binlog at ${where(f.file, f.offset, f.gtid)}; a target cannot repeat ` +
      'it without touching a table outside the include set or missing rows, so capture stops here. Way out: ' +
      '`tidemark run --rebaseline` re-copies the included tables from a new snapshot past it (or include both ' +
      'tables in source.include)',
    {
      code: 'CROSS_SCHEMA_DDL',
      retriable: false,
      context: { tables: names.join(','), file: f.file, offset: f.offset, gtid: f.gtid ?? undefined },
    },
  );
}

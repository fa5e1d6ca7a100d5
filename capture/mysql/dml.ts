/**
 * Statement-logged DML: with binlog_format=STATEMENT (a session setting) or MIXED, INSERT/REPLACE/UPDATE/DELETE/
 * LOAD DATA reach the binlog as Query events (their SQL text) instead of row events, and capture cannot turn them
 * into row changes. This module recognises such statements and names the tables they may write, so the
 * assembler can stop capture loudly when an included table is among them (see assembler.ts, STATEMENT_DML).
 *
 * Best effort, erring on the side of "touches": for multi-table UPDATE/DELETE every table named in the table
 * references counts (written or only read), since aliases decide which ones are written. Statements whose target
 * cannot be told (a logged SELECT/DO/CALL runs a stored function with side effects) report `unknownTarget`; the
 * assembler then treats them as touching included tables when the default schema is included. Pure.
 */
import type { StatementClass } from './ddl.ts';
import { Cursor, type TableRef, tokenize } from '../../mysql/sql-text.ts';

type DmlClass = Extract<StatementClass, { kind: 'dml' }>;

/** Keywords after which a table reference list is over (UPDATE … SET, DELETE … WHERE, …). */
const REFS_END = new Set(['SET', 'WHERE', 'ORDER', 'LIMIT', 'RETURNING', 'USING', 'FROM', 'VALUES', 'VALUE']);
const JOINS = new Set(['JOIN', 'STRAIGHT_JOIN']);

function peekPunct(c: Cursor, p: string): boolean {
  const t = c.toks[c.pos];
  return t?.t === 'punct' && t.v === p;
}

/** Skips a balanced parenthesized group; the cursor is on its '('. */
function skipParens(c: Cursor): void {
  let depth = 0;
  while (!c.done()) {
    if (c.acceptPunct('(')) depth++;
    else if (c.acceptPunct(')')) {
      depth--;
      if (depth <= 0) return;
    } else c.pos++;
  }
}

/**
 * Reads table references (t1 [AS] a JOIN t2 b ON … , (t3 JOIN t4), (SELECT …) d) up to a keyword of `REFS_END` at
 * this level or the end; pushes every table named. Derived tables (subqueries) are only read, never written.
 */
function tableRefs(c: Cursor, defaultSchema: string, out: TableRef[]): void {
  let expectFactor = true;
  while (!c.done()) {
    const w = c.peekWord();
    if (peekPunct(c, ')')) return;
    if (w !== undefined && REFS_END.has(w) && !(w === 'USING' && isJoinUsing(c))) return;
    if (expectFactor) {
      expectFactor = false;
      if (peekPunct(c, '(')) {
        const next = c.toks[c.pos + 1];
        if (next?.t === 'word' && (next.up === 'SELECT' || next.up === 'WITH' || next.up === 'VALUES')) {
          skipParens(c);
        } else {
          c.pos++;
          tableRefs(c, defaultSchema, out);
          c.acceptPunct(')');
        }
        continue;
      }
      const t = c.tableName(defaultSchema);
      if (t) out.push(t);
      continue;
    }
    if (c.acceptPunct(',')) expectFactor = true;
    else if (w !== undefined && JOINS.has(w)) {
      c.pos++;
      expectFactor = true;
    } else if (peekPunct(c, '(')) skipParens(c);
    else c.pos++;
  }
}

/** `USING (col, …)` of a join, as opposed to DELETE's `USING table_references`. */
function isJoinUsing(c: Cursor): boolean {
  const next = c.toks[c.pos + 1];
  return next?.t === 'punct' && next.v === '(';
}

/** Is there a SELECT at the top level after the cursor (INSERT … SELECT)? Does not move the cursor. */
function hasTopLevelSelect(c: Cursor): boolean {
  let depth = 0;
  for (let i = c.pos; i < c.toks.length; i++) {
    const t = c.toks[i]!;
    if (t.t === 'punct' && t.v === '(') depth++;
    else if (t.t === 'punct' && t.v === ')') depth--;
    else if (depth <= 0 && t.t === 'word' && (t.up === 'SELECT' || t.up === 'WITH')) return true;
    else if (depth <= 0 && t.t === 'word' && (t.up === 'VALUES' || t.up === 'VALUE' || t.up === 'SET')) return false;
  }
  return false;
}

/**
 * Is this CREATE TABLE … SELECT as a statement? In ROW format the server logs the resulting definition (no
 * SELECT) and the rows; a top-level SELECT in the logged text means the rows are not in the binlog.
 */
export function isStatementCtas(sql: string): boolean {
  const toks = tokenize(sql);
  let depth = 0;
  for (const [i, t] of toks.entries()) {
    if (t.t === 'punct' && t.v === '(') depth++;
    else if (t.t === 'punct' && t.v === ')') depth--;
    else if (t.t === 'word' && t.up === 'SELECT') {
      // Top level, or first inside a top-level parenthesis (CREATE TABLE t (SELECT …)); never a definition.
      const prev = toks[i - 1];
      if (depth === 0 || (depth === 1 && prev?.t === 'punct' && prev.v === '(')) return true;
    }
  }
  return false;
}

/** Consumes any of the given modifier keywords, in any order. */
function skipWords(c: Cursor, ...words: string[]): void {
  for (let w = c.peekWord(); w !== undefined && words.includes(w); w = c.peekWord()) c.pos++;
}

function dml(statement: string, tables: TableRef[], unknownTarget = false): DmlClass {
  return { kind: 'dml', statement, tables, unknownTarget: unknownTarget || tables.length === 0 };
}

/**
 * Classifies a DML statement; `head` is its first keyword (already consumed from `c`). Returns null for
 * statements that are not DML.
 */
export function classifyDml(head: string, c: Cursor, defaultSchema: string): DmlClass | null {
  switch (head) {
    case 'INSERT':
    case 'REPLACE': {
      skipWords(c, 'LOW_PRIORITY', 'DELAYED', 'HIGH_PRIORITY', 'IGNORE');
      c.accept('INTO');
      const t = c.tableName(defaultSchema);
      const select = hasTopLevelSelect(c);
      return dml(`${head}${select ? ' … SELECT' : ''}`, t ? [t] : []);
    }
    case 'UPDATE': {
      skipWords(c, 'LOW_PRIORITY', 'IGNORE');
      const tables: TableRef[] = [];
      tableRefs(c, defaultSchema, tables);
      return dml(tables.length > 1 ? 'multi-table UPDATE' : 'UPDATE', tables);
    }
    case 'DELETE': {
      skipWords(c, 'LOW_PRIORITY', 'QUICK', 'IGNORE');
      const tables: TableRef[] = [];
      // DELETE FROM t …, DELETE t1, t2 FROM refs …, DELETE FROM t1, t2 USING refs …: every table named after
      // FROM or USING (the names before FROM are aliases of those).
      let multi = c.peekWord() !== 'FROM';
      while (!c.done()) {
        if (c.accept('FROM') || (c.peekWord() === 'USING' && !isJoinUsing(c) && c.accept('USING'))) {
          const before = tables.length;
          tableRefs(c, defaultSchema, tables);
          if (tables.length - before > 1) multi = true;
          if (c.peekWord() === 'USING') multi = true;
        } else if (peekPunct(c, '(')) skipParens(c);
        else c.pos++;
      }
      return dml(multi ? 'multi-table DELETE' : 'DELETE', tables);
    }
    case 'LOAD': {
      const what = c.peekWord() === 'XML' ? 'LOAD XML' : 'LOAD DATA';
      while (!c.done()) {
        if (c.accept('INTO', 'TABLE')) {
          const t = c.tableName(defaultSchema);
          return dml(what, t ? [t] : []);
        }
        c.pos++;
      }
      return dml(what, []);
    }
    case 'SELECT':
    case 'DO':
    case 'CALL':
      // Logged only for their side effects (stored functions/procedures in statement format).
      return dml(head, [], true);
    default:
      return null;
  }
}

/**
 * Temporary tables per session, from the CREATE/DROP TEMPORARY TABLE statements MIXED/STATEMENT format logs (with
 * the session's thread id), so statement-logged DML on a temporary table that shares a name pattern with included
 * tables is not taken for a change to them. Knowledge starts with the stream: a temporary table created before
 * the stream's start position is not known (DML on it then stops capture like DML on a real table would).
 */
export class TemporaryTables {
  private readonly byThread = new Map<number, Set<string>>();

  /** Notes a CREATE/DROP TEMPORARY TABLE statement; other statements are ignored. */
  track(sql: string, defaultSchema: string, threadId: number | undefined): void {
    if (threadId === undefined) return;
    const c = new Cursor(tokenize(sql));
    const create = c.accept('CREATE');
    if (!create && !c.accept('DROP')) return;
    if (create) c.accept('OR', 'REPLACE');
    if (!c.accept('TEMPORARY') || !(c.accept('TABLE') || c.accept('TABLES'))) return;
    c.accept('IF', 'NOT', 'EXISTS') || c.accept('IF', 'EXISTS');
    const names: string[] = [];
    for (let t = c.tableName(defaultSchema); t; t = c.acceptPunct(',') ? c.tableName(defaultSchema) : undefined) {
      names.push(key(t));
      if (create) break;
    }
    let set = this.byThread.get(threadId);
    if (create) {
      if (!set) {
        if (this.byThread.size >= 10_000) this.byThread.clear(); // bounded; forgetting only risks a loud stop
        set = new Set();
        this.byThread.set(threadId, set);
      }
      for (const n of names) set.add(n);
    } else if (set) {
      for (const n of names) set.delete(n);
      if (set.size === 0) this.byThread.delete(threadId);
    }
  }

  has(threadId: number | undefined, t: TableRef): boolean {
    return threadId !== undefined && (this.byThread.get(threadId)?.has(key(t)) ?? false);
  }
}

function key(t: TableRef): string {
  return `${t.schema}\u0000${t.table}`;
}

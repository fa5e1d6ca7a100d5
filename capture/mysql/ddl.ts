/**
 * Classifies the statement text of a binlog Query event. In ROW format the only Query events are transaction
 * control (BEGIN/COMMIT/ROLLBACK/XA), DDL, and administrative statements (GRANT, CREATE USER, FLUSH, …); DML
 * appears only when a session logs in STATEMENT/MIXED format, and is recognised by dml.ts (kind `dml`).
 *
 * For table and database DDL it extracts the names the statement changes, qualified with the event's default
 * schema: CREATE/ALTER/DROP/RENAME/TRUNCATE TABLE, CREATE/DROP INDEX, CREATE/ALTER/DROP DATABASE (or SCHEMA).
 * Names may be bare or backquoted (a doubled backtick inside is one backtick), qualified as db.t / `db`.`t`, and
 * come in lists (DROP TABLE a, b; RENAME TABLE a TO b, c TO d). Comments are skipped, executable comments
 * (/*! … *\/, /*M! … *\/) are read as code, like the server does.
 *
 * Sequences are tables to tidemark: CREATE/ALTER/DROP SEQUENCE come out as table DDL naming them.
 * Views, procedures, functions, triggers and events come out as `object-ddl` (mysql/objects.ts parses them).
 * Users, roles and grants (CREATE/ALTER/DROP/RENAME USER, CREATE/DROP ROLE, GRANT, REVOKE, SET PASSWORD, SET
 * DEFAULT ROLE) come out as `account-ddl` (mysql/accounts.ts names the accounts; the assembler keeps those about
 * `source.accounts`). Everything else (temporary tables, servers, …) is `other`: tidemark does not replicate it.
 * `statement` is a keyword-only label ("CREATE USER") that is safe to log; the SQL text itself may hold secrets
 * (IDENTIFIED BY '…') and must never be logged unredacted (mysql/accounts.ts redactSecrets). Pure.
 */

import { classifyDml } from './dml.ts';
import { Cursor, type TableRef, type Token, tokenize } from '../../mysql/sql-text.ts';
import { type ObjectDdl, parseObjectDdl } from '../../mysql/objects.ts';
import { type AccountDdl, parseAccountDdl } from '../../mysql/accounts.ts';

export { type TableRef, tokenize } from '../../mysql/sql-text.ts';

export type StatementClass =
  | { readonly kind: 'begin' }
  | { readonly kind: 'commit' }
  | { readonly kind: 'rollback' }
  | { readonly kind: 'xa'; readonly statement: string }
  | {
      readonly kind: 'table-ddl';
      readonly statement: string;
      readonly tables: readonly TableRef[];
      /** CREATE TABLE t LIKE s: the table copied (s; not in `tables`). */
      readonly like?: TableRef;
      /** ALTER TABLE t … RENAME TO u: the new name (also in `tables`). */
      readonly renamed?: TableRef;
      /** ALTER TABLE t EXCHANGE PARTITION p WITH TABLE u: u (also in `tables`). */
      readonly exchanged?: TableRef;
    }
  | { readonly kind: 'database-ddl'; readonly statement: string; readonly database: string }
  /** CREATE/ALTER/DROP VIEW, PROCEDURE, FUNCTION, TRIGGER, EVENT (mysql/objects.ts). */
  | { readonly kind: 'object-ddl'; readonly statement: string; readonly object: ObjectDdl }
  /** Users, roles, grants (mysql/accounts.ts): the accounts the statement changes. */
  | { readonly kind: 'account-ddl'; readonly statement: string; readonly account: AccountDdl }
  /** Statement-logged DML (dml.ts): the tables it may write; unknownTarget when they cannot be told. */
  | {
      readonly kind: 'dml';
      readonly statement: string;
      readonly tables: readonly TableRef[];
      readonly unknownTarget: boolean;
    }
  | { readonly kind: 'other'; readonly statement: string };

const LABEL_WORDS = new Set([
  'TABLE',
  'TABLES',
  'DATABASE',
  'SCHEMA',
  'VIEW',
  'TRIGGER',
  'PROCEDURE',
  'FUNCTION',
  'EVENT',
  'USER',
  'ROLE',
  'INDEX',
  'SEQUENCE',
  'SERVER',
  'PACKAGE',
  'TEMPORARY',
  'PRIVILEGES',
  'LOGS',
  'BINARY',
  'UNIQUE',
  'FULLTEXT',
  'SPATIAL',
  'ONLINE',
  'IGNORE',
  'OR',
  'REPLACE',
  'ALGORITHM',
  'DEFINER',
  'AGGREGATE',
]);

/** Keyword-only label for logs: the leading keyword and following known keywords, never names or literals. */
function label(toks: readonly Token[]): string {
  const words: string[] = [];
  for (const t of toks) {
    if (t.t !== 'word') break;
    if (words.length > 0 && !LABEL_WORDS.has(t.up)) break;
    words.push(t.up);
    if (words.length >= 4) break;
  }
  return words.join(' ') || '(unknown)';
}

function tableList(c: Cursor, defaultSchema: string): TableRef[] {
  const out: TableRef[] = [];
  for (;;) {
    const t = c.tableName(defaultSchema);
    if (!t) break;
    out.push(t);
    c.skipWait();
    if (!c.acceptPunct(',')) break;
  }
  return out;
}

function classifyCreate(c: Cursor, defaultSchema: string, stmt: string): StatementClass {
  c.accept('OR', 'REPLACE');
  if (c.accept('DATABASE') || c.accept('SCHEMA')) {
    c.accept('IF', 'NOT', 'EXISTS');
    const db = c.ident();
    return db === undefined
      ? { kind: 'other', statement: stmt }
      : { kind: 'database-ddl', statement: stmt, database: db };
  }
  if (c.peekWord() === 'TEMPORARY') return { kind: 'other', statement: stmt };
  if (c.accept('TABLE')) {
    c.accept('IF', 'NOT', 'EXISTS');
    const t = c.tableName(defaultSchema);
    if (!t) return { kind: 'other', statement: stmt };
    const like = c.accept('LIKE') || (c.acceptPunct('(') && c.accept('LIKE')) ? c.tableName(defaultSchema) : undefined;
    return { kind: 'table-ddl', statement: 'CREATE TABLE', tables: [t], ...(like ? { like } : {}) };
  }
  if (c.accept('SEQUENCE')) return sequenceDdl(c, defaultSchema, 'CREATE SEQUENCE', stmt);
  c.accept('ONLINE') || c.accept('OFFLINE');
  c.accept('UNIQUE') || c.accept('FULLTEXT') || c.accept('SPATIAL');
  if (c.accept('INDEX')) return indexOn(c, defaultSchema, 'CREATE INDEX', stmt);
  return { kind: 'other', statement: stmt };
}

/** CREATE/ALTER/DROP SEQUENCE [IF [NOT] EXISTS] name[, name…]: a sequence is a table to tidemark. */
function sequenceDdl(c: Cursor, defaultSchema: string, statement: string, stmt: string): StatementClass {
  c.accept('IF', 'NOT', 'EXISTS') || c.accept('IF', 'EXISTS');
  const tables = tableList(c, defaultSchema);
  return tables.length ? { kind: 'table-ddl', statement, tables } : { kind: 'other', statement: stmt };
}

/** [IF [NOT] EXISTS] name [USING …|TYPE …] ON table */
function indexOn(c: Cursor, defaultSchema: string, statement: string, stmt: string): StatementClass {
  while (!c.done()) {
    if (c.accept('ON')) {
      const t = c.tableName(defaultSchema);
      return t ? { kind: 'table-ddl', statement, tables: [t] } : { kind: 'other', statement: stmt };
    }
    c.pos++;
  }
  return { kind: 'other', statement: stmt };
}

const DATABASE_OPTION_WORDS = new Set(['DEFAULT', 'CHARACTER', 'CHARSET', 'COLLATE', 'COMMENT', 'UPGRADE']);

function classifyAlter(c: Cursor, defaultSchema: string, stmt: string): StatementClass {
  if (c.accept('DATABASE') || c.accept('SCHEMA')) {
    const next = c.peekWord();
    const db = next !== undefined && DATABASE_OPTION_WORDS.has(next) ? undefined : c.ident();
    return { kind: 'database-ddl', statement: 'ALTER DATABASE', database: db ?? defaultSchema };
  }
  if (c.accept('SEQUENCE')) return sequenceDdl(c, defaultSchema, 'ALTER SEQUENCE', stmt);
  c.accept('ONLINE');
  c.accept('IGNORE');
  if (!c.accept('TABLE')) return { kind: 'other', statement: stmt };
  c.accept('IF', 'EXISTS');
  const first = c.tableName(defaultSchema);
  if (!first) return { kind: 'other', statement: stmt };
  const tables: TableRef[] = [first];
  // Renames and partition exchanges name further tables; only top-level clauses count (not inside parentheses).
  let depth = 0;
  let renamed: TableRef | undefined;
  let exchanged: TableRef | undefined;
  while (!c.done()) {
    if (c.acceptPunct('(')) depth++;
    else if (c.acceptPunct(')')) depth--;
    else if (depth === 0 && c.peekWord() === 'RENAME') {
      c.pos++;
      const next = c.peekWord();
      if (next === 'COLUMN' || next === 'INDEX' || next === 'KEY' || next === 'CONSTRAINT') continue;
      c.accept('TO') || c.accept('AS');
      const t = c.tableName(defaultSchema);
      if (t) {
        tables.push(t);
        renamed = t;
      }
    } else if (depth === 0 && c.accept('WITH', 'TABLE')) {
      const t = c.tableName(defaultSchema);
      if (t) {
        tables.push(t);
        exchanged = t;
      }
    } else c.pos++;
  }
  return {
    kind: 'table-ddl',
    statement: 'ALTER TABLE',
    tables,
    ...(renamed ? { renamed } : {}),
    ...(exchanged ? { exchanged } : {}),
  };
}

function classifyDrop(c: Cursor, defaultSchema: string, stmt: string): StatementClass {
  if (c.accept('DATABASE') || c.accept('SCHEMA')) {
    c.accept('IF', 'EXISTS');
    const db = c.ident();
    return db === undefined
      ? { kind: 'other', statement: stmt }
      : { kind: 'database-ddl', statement: stmt, database: db };
  }
  if (c.peekWord() === 'TEMPORARY') return { kind: 'other', statement: stmt };
  if (c.accept('TABLE') || c.accept('TABLES')) {
    c.accept('IF', 'EXISTS');
    const tables = tableList(c, defaultSchema);
    return tables.length ? { kind: 'table-ddl', statement: 'DROP TABLE', tables } : { kind: 'other', statement: stmt };
  }
  if (c.accept('SEQUENCE')) return sequenceDdl(c, defaultSchema, 'DROP SEQUENCE', stmt);
  c.accept('ONLINE') || c.accept('OFFLINE');
  if (c.accept('INDEX')) return indexOn(c, defaultSchema, 'DROP INDEX', stmt);
  return { kind: 'other', statement: stmt };
}

function classifyRename(c: Cursor, defaultSchema: string, stmt: string): StatementClass {
  if (!(c.accept('TABLE') || c.accept('TABLES'))) return { kind: 'other', statement: stmt };
  c.accept('IF', 'EXISTS');
  const tables: TableRef[] = [];
  for (;;) {
    const from = c.tableName(defaultSchema);
    if (!from) break;
    c.skipWait();
    if (!c.accept('TO')) break;
    const to = c.tableName(defaultSchema);
    if (!to) break;
    tables.push(from, to);
    if (!c.acceptPunct(',')) break;
  }
  return tables.length ? { kind: 'table-ddl', statement: 'RENAME TABLE', tables } : { kind: 'other', statement: stmt };
}

const ACCOUNT_HEADS = new Set(['CREATE', 'ALTER', 'DROP', 'RENAME', 'GRANT', 'REVOKE', 'SET']);

/**
 * Classifies one statement. `defaultSchema` is the Query event's current database ("" when none); it
 * qualifies unqualified table names.
 */
export function classifyStatement(sql: string, defaultSchema: string): StatementClass {
  const toks = tokenize(sql);
  const c = new Cursor(toks);
  const stmt = label(toks);
  const head = c.peekWord();
  const object = head === 'CREATE' || head === 'ALTER' || head === 'DROP' ? parseObjectDdl(toks, defaultSchema) : null;
  if (object) return { kind: 'object-ddl', statement: stmt, object };
  const account = head !== undefined && ACCOUNT_HEADS.has(head) ? parseAccountDdl(sql) : null;
  if (account) return { kind: 'account-ddl', statement: account.statement, account };
  c.pos++;
  switch (head) {
    case 'BEGIN':
      return c.done() || c.peekWord() === 'WORK' ? { kind: 'begin' } : { kind: 'other', statement: stmt };
    case 'START':
      return c.peekWord() === 'TRANSACTION' ? { kind: 'begin' } : { kind: 'other', statement: stmt };
    case 'COMMIT':
      return { kind: 'commit' };
    case 'ROLLBACK':
      // ROLLBACK [WORK] TO [SAVEPOINT] x stays inside the transaction.
      c.accept('WORK');
      return c.peekWord() === 'TO' ? { kind: 'other', statement: stmt } : { kind: 'rollback' };
    case 'XA':
      return { kind: 'xa', statement: stmt };
    case 'CREATE':
      return classifyCreate(c, defaultSchema, stmt);
    case 'ALTER':
      return classifyAlter(c, defaultSchema, stmt);
    case 'DROP':
      return classifyDrop(c, defaultSchema, stmt);
    case 'RENAME':
      return classifyRename(c, defaultSchema, stmt);
    case 'TRUNCATE': {
      c.accept('TABLE');
      const t = c.tableName(defaultSchema);
      return t ? { kind: 'table-ddl', statement: 'TRUNCATE TABLE', tables: [t] } : { kind: 'other', statement: stmt };
    }
    default:
      return (head !== undefined && classifyDml(head, c, defaultSchema)) || { kind: 'other', statement: stmt };
  }
}

/**
 * Splits the Info column of a Query event in SHOW BINLOG EVENTS ("use `db`; ALTER TABLE …") into the default
 * schema and the statement.
 */
export function splitUsePrefix(info: string): { schema: string; sql: string } {
  const m = /^use `((?:[^`]|``)*)`; ([\s\S]*)$/.exec(info);
  if (!m || m[1] === undefined || m[2] === undefined) return { schema: '', sql: info };
  return { schema: m[1].replaceAll('``', '`'), sql: m[2] };
}

/**
 * What parallel apply's writesets need to know of the replica's tables (writeset.ts `TableKeys`): every unique key
 * (PRIMARY included) and the tables foreign keys link each table to. Pure: SQL text, row parsing and the link
 * closure; the caller runs the queries and caches the result until the next DDL (DDL is a barrier, so nothing
 * runs on stale keys).
 *
 * A unique key on a column prefix (`UNIQUE (email(10))`) makes two values with the same prefix collide, which a
 * hash of whole values cannot see: such a table is taken whole (`wholeTable`).
 * Links: a table's `fkTables` is its whole connected component of the foreign-key graph (either direction,
 * transitively), itself included when it has any link — a cascade can come back to it through a cycle or a
 * self-reference, and within a component every transaction already conflicts through the shared table items, so
 * including itself costs nothing more. Pass every foreign key (conservative) or only the cascading ones (fk.ts:
 * apply sessions run with foreign_key_checks = 0 except for cascade parents, so only those change unseen rows).
 */
import { quoteString } from '../../mysql/sql.ts';
import type { TableKeys } from './writeset.ts';

/** One row per unique-key column of schema.table, in key order. */
export function uniqueKeysSql(schema: string, table: string): string {
  return (
    'SELECT INDEX_NAME AS name, COLUMN_NAME AS col, SUB_PART AS sub_part FROM information_schema.STATISTICS ' +
    `WHERE TABLE_SCHEMA = ${quoteString(schema)} AND TABLE_NAME = ${quoteString(table)} AND NON_UNIQUE = 0 ` +
    'ORDER BY INDEX_NAME, SEQ_IN_INDEX'
  );
}

/** Every (child, parent) pair of tables a foreign key links, on the whole server. */
export function foreignKeyLinksSql(): string {
  return (
    'SELECT DISTINCT TABLE_SCHEMA AS cs, TABLE_NAME AS ct, REFERENCED_TABLE_SCHEMA AS ps, ' +
    'REFERENCED_TABLE_NAME AS pt FROM information_schema.KEY_COLUMN_USAGE WHERE REFERENCED_TABLE_NAME IS NOT NULL'
  );
}

export interface TableRef {
  readonly schema: string;
  readonly table: string;
}

export interface FkLink {
  readonly child: TableRef;
  readonly parent: TableRef;
}

export function parseFkLinks(rows: readonly Record<string, unknown>[]): FkLink[] {
  return rows.map((r) => ({
    child: { schema: String(r['cs']), table: String(r['ct']) },
    parent: { schema: String(r['ps']), table: String(r['pt']) },
  }));
}

const key = (t: TableRef): string => JSON.stringify([t.schema, t.table]);

/** Each linked table → every table of its foreign-key component, itself included (see the file comment). */
export function fkComponents(links: readonly FkLink[]): Map<string, readonly TableRef[]> {
  const adj = new Map<string, { ref: TableRef; next: Set<string> }>();
  const node = (t: TableRef) => {
    let n = adj.get(key(t));
    if (!n) {
      n = { ref: t, next: new Set() };
      adj.set(key(t), n);
    }
    return n;
  };
  for (const l of links) {
    node(l.child).next.add(key(l.parent));
    node(l.parent).next.add(key(l.child));
  }
  const out = new Map<string, readonly TableRef[]>();
  for (const start of adj.keys()) {
    if (out.has(start)) continue;
    const seen = new Set([start]);
    const todo = [start];
    while (todo.length > 0) {
      for (const k of adj.get(todo.pop()!)!.next) {
        if (!seen.has(k)) {
          seen.add(k);
          todo.push(k);
        }
      }
    }
    const component = [...seen].map((k) => adj.get(k)!.ref);
    for (const k of seen) out.set(k, component);
  }
  return out;
}

/** The TableKeys of schema.table from the rows of uniqueKeysSql and the server's components. */
export function parseTableKeys(
  schema: string,
  table: string,
  rows: readonly Record<string, unknown>[],
  components: ReadonlyMap<string, readonly TableRef[]>,
): TableKeys {
  const byName = new Map<string, string[]>();
  let prefix = false;
  for (const r of rows) {
    const name = String(r['name']);
    if (r['sub_part'] !== null && r['sub_part'] !== undefined) prefix = true;
    const cols = byName.get(name);
    if (cols) cols.push(String(r['col']));
    else byName.set(name, [String(r['col'])]);
  }
  return {
    unique: [...byName].map(([name, columns]) => ({ name, columns })),
    fkTables: components.get(key({ schema, table })) ?? [],
    ...(prefix ? { wholeTable: true } : {}),
  };
}

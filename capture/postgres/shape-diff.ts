/**
 * The DDL fallback without event triggers (pure): two successive shapes of one table (from its Relation messages)
 * → the DDL statements that turn the first into the second on a target, where that can be exact:
 *   - columns dropped (the others keep their order): ALTER TABLE … DROP COLUMN;
 *   - columns added at the end: ALTER TABLE … ADD COLUMN with the type, NOT NULL, and — when the source stored a
 *     "missing value" for the rows already there (ADD COLUMN … DEFAULT of a non-volatile expression) — exactly that
 *     value as a literal, then the source's default expression set (or dropped) separately.
 * Anything else (a rename, a changed type, a reorder, a generated or identity column, a default that rewrote the
 * table, a column already gone again from the catalog) is `inexact`: capture stops with PG_DDL_UNTRACKED naming
 * the table, rather than guess.
 */
import { qualifiedName, quoteIdent, quoteLiteral } from '../../postgres/sql.ts';
import type { TableShape } from './relations.ts';

/** What the catalog says now about a column the Relation message added (relations.ts addedColumnFacts). */
export interface AddedColumnFacts {
  readonly name: string;
  /** format_type text. */
  readonly type: string;
  readonly notNull: boolean;
  /** pg_attribute.attmissingval as text (an array literal, e.g. `{5}`), null when atthasmissing is false. */
  readonly missing: string | null;
  /** pg_get_expr of the default, null without one. */
  readonly default: string | null;
  readonly generated: boolean;
  readonly identity: boolean;
}

export type ShapeChange =
  | { readonly kind: 'same' }
  | { readonly kind: 'dropped'; readonly columns: readonly string[] }
  | { readonly kind: 'added'; readonly columns: readonly { name: string; columnType: string }[] }
  | { readonly kind: 'inexact'; readonly why: string };

const key = (c: { name: string; type: string; columnType?: string | undefined }) =>
  `${c.name}\u0000${c.columnType ?? c.type}`;

/** How `after` differs from `before` (same table). */
export function diffShapes(before: TableShape, after: TableShape): ShapeChange {
  const a = before.columns.map(key);
  const b = after.columns.map(key);
  if (a.length === b.length && a.every((x, i) => x === b[i])) return { kind: 'same' };
  if (b.length > a.length && a.every((x, i) => x === b[i])) {
    return {
      kind: 'added',
      columns: after.columns.slice(a.length).map((c) => ({ name: c.name, columnType: c.columnType ?? c.type })),
    };
  }
  if (b.length < a.length) {
    const kept = a.filter((x) => b.includes(x));
    if (kept.length === b.length && kept.every((x, i) => x === b[i])) {
      return { kind: 'dropped', columns: before.columns.filter((c) => !b.includes(key(c))).map((c) => c.name) };
    }
  }
  const gone = before.columns.filter((c) => !b.includes(key(c))).map((c) => c.name);
  const added = after.columns.filter((c) => !a.includes(key(c))).map((c) => c.name);
  return {
    kind: 'inexact',
    why:
      `columns changed (before only: ${gone.join(', ') || 'none'}; after only: ${added.join(', ') || 'none'}` +
      '; a rename, a type change or a reorder cannot be told apart from the Relation messages alone)',
  };
}

/** The statements for the change, or why it cannot be exact. */
export function synthesizeDdl(
  t: TableShape,
  change: Exclude<ShapeChange, { kind: 'same' | 'inexact' }>,
  facts: readonly AddedColumnFacts[],
): { sql: string[] } | { why: string } {
  const table = qualifiedName(t.schema, t.table);
  if (change.kind === 'dropped') {
    return { sql: [`ALTER TABLE ${table} ${change.columns.map((c) => `DROP COLUMN ${quoteIdent(c)}`).join(', ')}`] };
  }
  const sql: string[] = [];
  for (const c of change.columns) {
    const f = facts.find((x) => x.name === c.name);
    if (!f) return { why: `column ${c.name} is gone from the catalog again (dropped or renamed since)` };
    if (f.type !== c.columnType)
      return { why: `column ${c.name} is ${f.type} in the catalog, ${c.columnType} in the stream` };
    if (f.generated || f.identity) return { why: `column ${c.name} is a generated or identity column` };
    let add = `ALTER TABLE ${table} ADD COLUMN ${quoteIdent(c.name)} ${f.type}`;
    if (f.missing !== null) {
      // The rows already there hold the missing value: the same value, as the exact text, for the target's rows.
      if (f.type.endsWith(']')) return { why: `column ${c.name} is an array with a default for existing rows` };
      add += ` DEFAULT (${quoteLiteral(f.missing)}::${f.type}[])[1]`;
    } else if (f.default !== null) {
      return { why: `column ${c.name} has a default (${f.default}) but no stored value for the existing rows` };
    }
    if (f.notNull) add += ' NOT NULL';
    sql.push(add);
    if (f.missing !== null) {
      const col = `ALTER TABLE ${table} ALTER COLUMN ${quoteIdent(c.name)}`;
      sql.push(f.default === null ? `${col} DROP DEFAULT` : `${col} SET DEFAULT ${f.default}`);
    }
  }
  return { sql };
}

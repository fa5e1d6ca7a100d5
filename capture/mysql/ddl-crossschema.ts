/**
 * DDL across the include boundary (issue #11 item 8): statements that move a table into or out of the captured
 * tables, or create one from a table outside them. Verbatim on a target they would fail (the outside table is not
 * there) or touch a table outside the include set, so they become steps:
 *
 *   CREATE TABLE inc.t LIKE out.s            copy inc.t (its definition and rows, read from the source)
 *   RENAME TABLE out.t TO inc.t              copy inc.t (the table moved in)
 *   ALTER TABLE out.t … RENAME TO inc.t      copy inc.t (moved in, in whatever shape the ALTER left it)
 *   RENAME TABLE inc.t TO out.t              DROP TABLE IF EXISTS inc.t (moved out)
 *   RENAME TABLE inc.a TO inc.b              unchanged (RENAME TABLE inc.a TO inc.b)
 *   RENAME TABLE out.a TO out.b              nothing
 *
 * A RENAME with several pairs is followed pair by pair, so chains come out right: a table that moves in and is
 * renamed again in the same statement is copied under its final name, one that moves in and out again is not
 * copied at all. Copies come last (each reads the table as the source holds it then). `includes` says whether a
 * table is captured here; a table inside a copy window counts as outside (see assembler.ts). ALTER TABLE … RENAME
 * out of the set and EXCHANGE PARTITION across it are ddl-rewrite.ts's (a DROP, a refusal). Pure.
 */
import type { StatementClass } from './ddl.ts';
import { renamePairs } from './ddl-rewrite.ts';
import { qualified, type TableRef } from '../../mysql/sql-text.ts';

export type CrossSchemaStep =
  | { readonly kind: 'ddl'; readonly sql: string; readonly tables: readonly TableRef[] }
  | { readonly kind: 'copy'; readonly table: TableRef };

const key = (t: TableRef) => `${t.schema}\u0000${t.table}`;

/** The steps replacing `cls`, or null when it does not cross the include boundary (journal it as usual). */
export function crossSchemaSteps(
  cls: Extract<StatementClass, { kind: 'table-ddl' }>,
  includes: (t: TableRef) => boolean,
): CrossSchemaStep[] | null {
  if (cls.statement === 'CREATE TABLE') {
    const t = cls.tables[0];
    if (!t || !cls.like || !includes(t) || includes(cls.like)) return null;
    return [{ kind: 'copy', table: t }];
  }
  if (cls.statement === 'ALTER TABLE') {
    const [from, to] = cls.tables;
    // Only a plain move: [from, to] exactly (a partition exchange would name a further table).
    if (!from || !to || cls.tables.length !== 2 || cls.renamed !== to || includes(from) || !includes(to)) return null;
    return [{ kind: 'copy', table: to }];
  }
  if (cls.statement !== 'RENAME TABLE') return null;
  const pairs = renamePairs(cls.tables);
  if (pairs.every(([f, t]) => includes(f) === includes(t))) return null;
  const steps: CrossSchemaStep[] = [];
  // Tables that moved in, by their current name: copied once the statement is through.
  const pending = new Map<string, TableRef>();
  for (const [from, to] of pairs) {
    const fi = includes(from);
    const ti = includes(to);
    const moving = pending.get(key(from));
    if (moving) pending.delete(key(from));
    if (fi && ti) {
      if (moving) pending.set(key(to), to);
      else steps.push({ kind: 'ddl', sql: `RENAME TABLE ${qualified(from)} TO ${qualified(to)}`, tables: [from, to] });
    } else if (fi) {
      if (!moving) steps.push({ kind: 'ddl', sql: `DROP TABLE IF EXISTS ${qualified(from)}`, tables: [from] });
    } else if (ti) {
      pending.set(key(to), to);
    }
  }
  for (const t of pending.values()) steps.push({ kind: 'copy', table: t });
  return steps;
}

/**
 * Restricts table DDL to the include set before it is journaled, so a target never runs a statement on a table
 * outside it: `DROP TABLE zoo.a, other.b` (only zoo.* captured) becomes ``DROP TABLE `zoo`.`a` ``. Names in a
 * rewritten statement are always schema-qualified and quoted, so the event's default schema no longer matters.
 *
 *   keep      every table the statement names is included: journal it verbatim
 *   skip      no table is included (the assembler does not call this then)
 *   rewrite   DROP TABLE / DROP SEQUENCE / RENAME TABLE lists cut down to the included tables or pairs
 *   refuse    no statement on the targets can reproduce it: ALTER TABLE … EXCHANGE PARTITION with a table outside
 *             the set (rows move between the tables, the binlog carries none of them), ALTER TABLE out.t
 *             RENAME TO inc.t (a table moving in: its rows are not in the journal). ALTER TABLE inc.t RENAME TO
 *             out.t (moving out) becomes a DROP of inc.t.
 *   moves     RENAME TABLE pairs with one side in the include set and the other outside: a table moving into or
 *             out of the captured tables. `kept` is the rewritten statement for the pairs inside (or null). The
 *             assembler never gets this result: it asks ddl-crossschema.ts first, which turns every such RENAME
 *             into copies and drops.
 *
 * Pure.
 */
import type { StatementClass } from './ddl.ts';
import { qualified, type TableRef, tokenize } from '../../mysql/sql-text.ts';

export interface TableMove {
  readonly from: TableRef;
  readonly to: TableRef;
  /** 'in': from outside the include set to inside; 'out': the other way. */
  readonly direction: 'in' | 'out';
}

export type DdlRewrite =
  | { readonly kind: 'keep' }
  | { readonly kind: 'skip' }
  | { readonly kind: 'rewrite'; readonly sql: string; readonly tables: readonly TableRef[] }
  | { readonly kind: 'refuse'; readonly reason: string }
  | {
      readonly kind: 'moves';
      readonly kept: { readonly sql: string; readonly tables: readonly TableRef[] } | null;
      readonly moves: readonly TableMove[];
    };

/** Does the DROP statement carry IF EXISTS (read from its tokens, comments skipped)? */
function dropIfExists(sql: string): boolean {
  const words = tokenize(sql)
    .slice(0, 6)
    .map((t) => (t.t === 'word' ? t.up : ''));
  const i = words.indexOf('IF');
  return i >= 0 && words[i + 1] === 'EXISTS';
}

/**
 * What to journal for a table-ddl statement given which of its tables are included. `cls` is the classifier's
 * result for `sql`.
 */
export function restrictDdl(
  cls: Extract<StatementClass, { kind: 'table-ddl' }>,
  sql: string,
  includes: (t: TableRef) => boolean,
): DdlRewrite {
  const inc = cls.tables.map(includes);
  if (inc.every(Boolean)) return { kind: 'keep' };
  if (!inc.some(Boolean)) return { kind: 'skip' };
  switch (cls.statement) {
    case 'DROP TABLE':
    case 'DROP SEQUENCE': {
      const tables = cls.tables.filter((_, i) => inc[i]);
      const ifExists = dropIfExists(sql) ? ' IF EXISTS' : '';
      return { kind: 'rewrite', sql: `${cls.statement}${ifExists} ${tables.map(qualified).join(', ')}`, tables };
    }
    case 'RENAME TABLE': {
      const inside: [TableRef, TableRef][] = [];
      const moves: TableMove[] = [];
      for (const [from, to] of renamePairs(cls.tables)) {
        const [fi, ti] = [includes(from), includes(to)];
        if (fi && ti) inside.push([from, to]);
        else if (fi || ti) moves.push({ from, to, direction: fi ? 'out' : 'in' });
      }
      const kept =
        inside.length === 0
          ? null
          : {
              sql: `RENAME TABLE ${inside.map(([f, t]) => `${qualified(f)} TO ${qualified(t)}`).join(', ')}`,
              tables: inside.flat(),
            };
      if (moves.length > 0) return { kind: 'moves', kept, moves };
      return kept ? { kind: 'rewrite', ...kept } : { kind: 'skip' };
    }
    case 'ALTER TABLE': {
      const first = cls.tables[0]!;
      if (cls.exchanged) {
        return {
          kind: 'refuse',
          reason:
            'ALTER TABLE … EXCHANGE PARTITION between a captured table and one outside the include set (the rows ' +
            'that change tables are not in the binlog)',
        };
      }
      if (inc[0]) return { kind: 'rewrite', sql: `DROP TABLE IF EXISTS ${qualified(first)}`, tables: [first] };
      return {
        kind: 'refuse',
        reason:
          'ALTER TABLE … RENAME moving a table into the include set (its rows are not in the binlog; RENAME TABLE ' +
          'moves are followed)',
      };
    }
    default:
      // Single-table statements (TRUNCATE, CREATE/DROP INDEX) are included or not as a whole; CREATE TABLE … LIKE
      // across the boundary is a cross-schema statement (ddl-crossschema.ts).
      return { kind: 'keep' };
  }
}

/** RENAME TABLE's `tables` (from, to, from, to, …) as [from, to] pairs. */
export function renamePairs(flat: readonly TableRef[]): [TableRef, TableRef][] {
  const out: [TableRef, TableRef][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}

/**
 * Foreign keys whose actions cascade (ON DELETE / ON UPDATE with CASCADE or SET NULL), as a server declares them.
 *
 * InnoDB does not write what a cascade changes to the binlog: a source DELETE of a parent row is journaled as that
 * one delete, and the child rows it removed (or set to NULL) are never seen. So apply runs the statements of such
 * parents with foreign_key_checks = 1 (the replica cascades itself, exactly as the source did), and rewind/undo
 * refuse to take back a change whose cascade they cannot take back (see README.md "Foreign keys").
 *
 * `cascadingFksSql()` reads every such constraint of the server in one query (information_schema, all schemas:
 * a child may live in another schema than its parent); `FkCache` keeps the result until the next DDL.
 */
import { quoteString } from '../../mysql/sql.ts';
import type { StatementBatch } from './batcher.ts';

/** ON DELETE/UPDATE actions that change child rows (InnoDB knows no SET DEFAULT). */
export type FkAction = 'CASCADE' | 'SET NULL';

export interface CascadingFk {
  /** Schema of the constraint and of the child table. */
  readonly schema: string;
  readonly name: string;
  readonly childTable: string;
  readonly parentSchema: string;
  readonly parentTable: string;
  /** Referenced (parent) columns, in constraint order. */
  readonly parentColumns: readonly string[];
  /** null: NO ACTION / RESTRICT (nothing happens to children, or the statement is refused). */
  readonly onDelete: FkAction | null;
  readonly onUpdate: FkAction | null;
}

/** One row per (constraint, column); parseCascadingFks() groups them. */
export function cascadingFksSql(): string {
  return (
    'SELECT rc.CONSTRAINT_SCHEMA AS cs, rc.CONSTRAINT_NAME AS cn, rc.TABLE_NAME AS child, ' +
    'k.REFERENCED_TABLE_SCHEMA AS ps, k.REFERENCED_TABLE_NAME AS pt, k.REFERENCED_COLUMN_NAME AS pc, ' +
    'rc.DELETE_RULE AS del, rc.UPDATE_RULE AS upd ' +
    'FROM information_schema.REFERENTIAL_CONSTRAINTS rc ' +
    'JOIN information_schema.KEY_COLUMN_USAGE k ON k.CONSTRAINT_SCHEMA = rc.CONSTRAINT_SCHEMA ' +
    'AND k.CONSTRAINT_NAME = rc.CONSTRAINT_NAME AND k.TABLE_NAME = rc.TABLE_NAME ' +
    'WHERE k.REFERENCED_TABLE_NAME IS NOT NULL ' +
    `AND (rc.DELETE_RULE IN (${quoteString('CASCADE')}, ${quoteString('SET NULL')}) ` +
    `OR rc.UPDATE_RULE IN (${quoteString('CASCADE')}, ${quoteString('SET NULL')})) ` +
    'ORDER BY rc.CONSTRAINT_SCHEMA, rc.TABLE_NAME, rc.CONSTRAINT_NAME, k.ORDINAL_POSITION'
  );
}

function action(rule: unknown): FkAction | null {
  const r = String(rule ?? '').toUpperCase();
  return r === 'CASCADE' || r === 'SET NULL' ? r : null;
}

/** Groups the rows of cascadingFksSql() by constraint. */
export function parseCascadingFks(rows: readonly Record<string, unknown>[]): CascadingFk[] {
  const out = new Map<string, CascadingFk & { parentColumns: string[] }>();
  for (const r of rows) {
    const schema = String(r['cs']);
    const childTable = String(r['child']);
    const name = String(r['cn']);
    const k = JSON.stringify([schema, childTable, name]);
    let fk = out.get(k);
    if (!fk) {
      fk = {
        schema,
        name,
        childTable,
        parentSchema: String(r['ps']),
        parentTable: String(r['pt']),
        parentColumns: [],
        onDelete: action(r['del']),
        onUpdate: action(r['upd']),
      };
      out.set(k, fk);
    }
    fk.parentColumns.push(String(r['pc']));
  }
  return [...out.values()];
}

/** `db.child.fk_name (db.parent → db.child, ON DELETE CASCADE)` for messages. */
export function describeFk(fk: CascadingFk, op: 'delete' | 'update'): string {
  const act = op === 'delete' ? fk.onDelete : fk.onUpdate;
  return (
    `${fk.schema}.${fk.childTable}.${fk.name} (${fk.parentSchema}.${fk.parentTable} → ${fk.schema}.${fk.childTable}, ` +
    `ON ${op.toUpperCase()} ${act ?? 'NO ACTION'})`
  );
}

/** The cascading constraints of one server by parent table. */
export class FkIndex {
  readonly #byParent = new Map<string, CascadingFk[]>();
  /** Parent and child tables of every cascading constraint, by schema. */
  readonly #tables = new Map<string, Set<string>>();

  constructor(fks: readonly CascadingFk[]) {
    for (const fk of fks) {
      this.#note(fk.parentSchema, fk.parentTable);
      this.#note(fk.schema, fk.childTable);
      const k = JSON.stringify([fk.parentSchema, fk.parentTable]);
      const list = this.#byParent.get(k);
      if (list) list.push(fk);
      else this.#byParent.set(k, [fk]);
    }
  }

  #note(schema: string, table: string): void {
    const set = this.#tables.get(schema);
    if (set) set.add(table);
    else this.#tables.set(schema, new Set([table]));
  }

  /** schema.table is the parent or the child of a cascading constraint (a change to it may change, or be, a cascade). */
  involves(schema: string, table: string): boolean {
    return this.#tables.get(schema)?.has(table) ?? false;
  }

  /** No cascading constraint at all. */
  get empty(): boolean {
    return this.#byParent.size === 0;
  }

  /** Constraints whose `op` on a row of schema.table changes child rows (cascade or SET NULL). */
  cascades(schema: string, table: string, op: 'insert' | 'update' | 'delete'): readonly CascadingFk[] {
    if (op === 'insert') return [];
    const list = this.#byParent.get(JSON.stringify([schema, table])) ?? [];
    return list.filter((fk) => (op === 'delete' ? fk.onDelete : fk.onUpdate) !== null);
  }

  /**
   * Can a delete of a row of schema.table change other rows of the same table, through ON DELETE actions on it
   * and on the tables they cascade into (a self-referencing or cyclic foreign key)?
   */
  deleteReachesItself(schema: string, table: string): boolean {
    const start = JSON.stringify([schema, table]);
    const seen = new Set<string>();
    const todo = [start];
    while (todo.length > 0) {
      const at = todo.pop()!;
      for (const fk of this.#byParent.get(at) ?? []) {
        if (fk.onDelete === null) continue;
        const child = JSON.stringify([fk.schema, fk.childTable]);
        if (child === start) return true;
        // SET NULL changes the child row but deletes nothing: nothing cascades further from it on delete.
        if (fk.onDelete === 'CASCADE' && !seen.has(child)) {
          seen.add(child);
          todo.push(child);
        }
      }
    }
    return false;
  }
}

/** Runs one query and returns its rows. */
export type RowsQuery = (sql: string) => Promise<readonly Record<string, unknown>[]>;

export async function loadFkIndex(q: RowsQuery): Promise<FkIndex> {
  return new FkIndex(parseCascadingFks(await q(cascadingFksSql())));
}

/** FkIndex loaded on first use and dropped by invalidate() (after DDL, on reconnect). */
export class FkCache {
  readonly #q: RowsQuery;
  #index: FkIndex | null = null;

  constructor(q: RowsQuery) {
    this.#q = q;
  }

  async get(): Promise<FkIndex> {
    this.#index ??= await loadFkIndex(this.#q);
    return this.#index;
  }

  /** The index loaded since the last invalidate(), or null (for callers that cannot wait). */
  get loaded(): FkIndex | null {
    return this.#index;
  }

  invalidate(): void {
    this.#index = null;
  }
}

/**
 * Cascaded changes are not in the binlog: an update or delete on a parent of a cascading foreign key of the
 * replica runs with foreign_key_checks = 1, so the replica cascades exactly as the source did — unless the source
 * itself ran it with checks off (then nothing cascaded there either).
 */
export function withFkChecks(b: StatementBatch, fks: FkIndex | null): StatementBatch {
  if (b.op === 'insert' || b.fkChecksOff || !fks) return b;
  return fks.cascades(b.schema, b.table, b.op).length > 0 ? { ...b, fkChecks: true } : b;
}

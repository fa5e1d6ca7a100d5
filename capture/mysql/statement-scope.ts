/**
 * Which statements of the binlog (Query events, classified by ddl.ts) concern what this capture covers, and what
 * those become for the transaction assembler (assembler.ts). Pure.
 *
 *   table / database DDL    on an included table or schema: its DDL entry — rewritten so a target never touches
 *                           a table outside the include set (ddl-rewrite.ts), or copies for tables moving into it
 *                           and for ADD SYSTEM VERSIONING (ddl-crossschema.ts, ddl-versioning.ts); refused
 *                           (CAPTURE_CROSS_SCHEMA_DDL) when it cannot be restricted
 *   view / trigger          when its name / its table is an included table
 *   routine / event         when its schema is included
 *   user / role / grant     when every account it changes is listed (source.accounts); mixed: reported, skipped
 *   statement-logged DML    on an included table (not a session's temporary table): capture must stop
 */
import type { AccountList } from '../../mysql/accounts.ts';
import { isListed } from '../../mysql/accounts.ts';
import type { ObjectDdl } from '../../mysql/objects.ts';
import type { TableFilter } from '../../mysql/table-filter.ts';
import type { StatementClass, TableRef } from './ddl.ts';
import { type CrossSchemaStep, crossSchemaSteps } from './ddl-crossschema.ts';
import { restrictDdl } from './ddl-rewrite.ts';
import { versioningSteps } from './ddl-versioning.ts';
import type { TemporaryTables } from './dml.ts';
import { crossSchemaDdlError } from './statement-errors.ts';

/** The part of the assembler's options (AssemblerOptions) that says what is captured. */
export interface ScopeOptions {
  readonly filter: TableFilter;
  /** The accounts whose user/role/grant statements are captured (source.accounts); none when absent. */
  readonly accounts?: AccountList;
  /** A statement naming listed accounts and others (or the session's own): skipped; `listed` are user@host. */
  readonly onMixedAccounts?: (statement: string, listed: readonly string[]) => void;
}

/** Captured here: included by the filter and not inside a copy window (the assembler's, copy-windows.ts). */
export type Includes = (schema: string, table: string) => boolean;

/**
 * A view is captured when its name is an included table (it stands where a table could); a trigger when its
 * table is; a routine or event when its schema is included.
 */
export function objectIncluded(o: ObjectDdl, so: ScopeOptions, includes: Includes): boolean {
  const f = so.filter;
  if (o.table) return includes(o.table.schema, o.table.table);
  return o.objects.some((x) => (o.kind === 'view' ? f.includesTable(x.schema, x.name) : f.includesSchema(x.schema)));
}

/** Every account the statement changes is listed (a mixed statement is reported and skipped). */
export function accountsIncluded(cls: Extract<StatementClass, { kind: 'account-ddl' }>, so: ScopeOptions): boolean {
  const list = so.accounts;
  if (!list) return false;
  const listed = cls.account.accounts.filter((a) => isListed(a, list));
  if (listed.length === 0) return false;
  if (listed.length === cls.account.accounts.length && !cls.account.current) return true;
  const names = listed.map((a) => (a.host === undefined ? a.user : `${a.user}@${a.host}`));
  so.onMixedAccounts?.(cls.statement, names);
  return false;
}

/**
 * What a table or database DDL (`sql`) becomes on the targets; null when it touches nothing captured here. `where`
 * locates it for the error of a DDL that cannot be restricted to the include set.
 */
export function ddlSteps(
  cls: Extract<StatementClass, { kind: 'table-ddl' | 'database-ddl' }>,
  sql: string,
  so: ScopeOptions,
  includes: Includes,
  where: { readonly file: string; readonly offset: bigint; readonly gtid: string | null },
): readonly CrossSchemaStep[] | null {
  if (cls.kind === 'database-ddl') {
    return so.filter.includesSchema(cls.database) ? [{ kind: 'ddl', sql, tables: [] }] : null;
  }
  const inc = (t: TableRef) => includes(t.schema, t.table);
  if (!cls.tables.some(inc)) return null;
  // Moves across the include boundary, and ADD SYSTEM VERSIONING (ddl-versioning.ts), become copies.
  const steps = crossSchemaSteps(cls, inc) ?? versioningSteps(cls, sql, inc);
  if (steps) return steps;
  // Never let a target touch a table outside the include set (DROP TABLE incl.a, other.b).
  const r = restrictDdl(cls, sql, inc);
  if (r.kind === 'refuse') throw crossSchemaDdlError({ reason: r.reason, tables: cls.tables, ...where });
  // r.kind 'moves' does not come here: crossSchemaSteps above took every RENAME across the boundary.
  const [text, tables] = r.kind === 'rewrite' ? [r.sql, r.tables] : [sql, cls.tables];
  return [{ kind: 'ddl', sql: text, tables }];
}

/**
 * Statement-logged DML (a session with binlog_format=STATEMENT, or MIXED): its changes are not in the binlog as
 * rows. Returns the included tables it changes (empty when its target is unknown but its default `schema` is
 * included) — capture must stop rather than lose them — or null when it concerns nothing captured here. Temporary
 * tables (statement-logged in MIXED format) are the session's own: never captured.
 */
export function statementDmlHits(
  cls: Extract<StatementClass, { kind: 'dml' }>,
  schema: string,
  threadId: number | undefined,
  filter: TableFilter,
  temps: TemporaryTables,
): readonly TableRef[] | null {
  const hit = cls.tables.filter((t) => filter.includesTable(t.schema, t.table) && !temps.has(threadId, t));
  if (hit.length > 0 || (cls.unknownTarget && schema !== '' && filter.includesSchema(schema))) return hit;
  return null;
}

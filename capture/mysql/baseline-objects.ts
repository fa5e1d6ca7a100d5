/**
 * The schema objects of the baseline (issue #16): the views, stored procedures and functions, triggers and events
 * of the included schemas, read inside the baseline's snapshot transaction after the tables, as the DDL that
 * re-creates each (its SHOW CREATE text, definer and SQL SECURITY included), in an order that works on an empty
 * replica holding the tables:
 *
 *   1. procedures and functions   DROP … IF EXISTS, SHOW CREATE (a view may call a function: routines first)
 *   2. views                      DROP VIEW IF EXISTS, SHOW CREATE VIEW, a view after the views it reads (viewOrder)
 *   3. triggers                   SHOW CREATE TRIGGER, per table and timing in ACTION_ORDER (their tables were just
 *                                 re-created, so no old trigger is left)
 *   4. events                     DROP EVENT IF EXISTS, SHOW CREATE EVENT (apply keeps them disabled on the replica)
 *
 * What is included: a view when its name is an included table, a trigger when its table is, a routine or event
 * when its schema is (as the stream decides, assembler.ts) and the baseline creates that schema. The server hides
 * the triggers and events of a schema from an account without TRIGGER or EVENT there: a warning names the grant
 * (objectPrivilegeWarning); a NULL definition (the account may not read it) is an error naming the privilege.
 */
import type { RowDataPacket } from 'mysql2/promise';
import type { Logger } from 'pino';
import { TidemarkError } from '../../core/errors.ts';
import { missingObjectPrivileges, parseGrants } from '../../mysql/grants.ts';
import { type ObjectKind, SHOW_CREATE } from '../../mysql/objects.ts';
import { qualified, quoteIdent } from '../../mysql/sql.ts';
import type { TableFilter } from '../../mysql/table-filter.ts';
import type { SourceConnection } from './connection.ts';

/** One statement of the baseline's object unit; `schema` is its default schema. */
export interface ObjectStatement {
  readonly schema: string;
  readonly sql: string;
}

interface Found {
  readonly kind: ObjectKind;
  readonly schema: string;
  readonly name: string;
}

/**
 * Views ordered so that each comes after the views its definition names (`name` backquoted, or `schema`.`name`);
 * a cycle (a name that only looks like a reference) keeps the remaining views in name order.
 */
export function viewOrder<T extends { readonly schema: string; readonly name: string; readonly text: string }>(
  views: readonly T[],
): T[] {
  const refers = (a: T, b: T) =>
    a !== b &&
    (a.text.includes(`${qualified(b.schema, b.name)}`) || (a.schema === b.schema && a.text.includes(`\`${b.name}\``)));
  const left = [...views];
  const out: T[] = [];
  while (left.length > 0) {
    const i = left.findIndex((v) => !left.some((w) => refers(v, w)));
    out.push(...left.splice(i < 0 ? 0 : i, 1));
  }
  return out;
}

async function rows(conn: SourceConnection, sql: string): Promise<RowDataPacket[]> {
  const [r] = await conn.promise.query<RowDataPacket[]>(sql);
  return r;
}

async function definition(conn: SourceConnection, o: Found): Promise<string> {
  const s = SHOW_CREATE[o.kind];
  const [[row]] = await conn.promise.query<RowDataPacket[]>({
    sql: `SHOW CREATE ${s.what} ${qualified(o.schema, o.name)}`,
    rowsAsArray: true,
  });
  const text = (row as unknown as unknown[] | undefined)?.[s.col];
  if (typeof text !== 'string' && !(text instanceof Buffer)) {
    throw new TidemarkError(
      `cannot read the definition of ${s.what.toLowerCase()} ${qualified(o.schema, o.name)}: grant the capture ` +
        'account SHOW VIEW (views), SHOW CREATE ROUTINE or SELECT on mysql.proc (routines), TRIGGER, EVENT on the schema',
      { code: 'PRIVILEGE', context: { schema: o.schema } },
    );
  }
  return String(text);
}

/** Warns, per schema, about the privileges without which its objects are invisible (mysql/grants.ts). */
async function objectPrivilegeWarning(conn: SourceConnection, schemas: ReadonlySet<string>, log: Logger) {
  const [grantRows] = await conn.promise.query<RowDataPacket[]>({ sql: 'SHOW GRANTS', rowsAsArray: true });
  const grants = parseGrants((grantRows as unknown as unknown[][]).map((r) => String(r[0])));
  for (const schema of schemas) {
    const missing = missingObjectPrivileges(grants, schema);
    if (missing.length === 0) continue;
    const on = `${quoteIdent(schema)}.*`;
    log.warn(
      { schema, missing, roles: grants.hasRoles },
      `the capture account lacks ${missing.join(', ')} on ${on}: the server hides those views/triggers/events ` +
        `from it and the baseline cannot copy them; GRANT ${missing.join(', ')} ON ${on} TO the capture account`,
    );
  }
}

/** Every included object's DDL, in creation order (see the module comment). */
export async function readObjectStatements(
  conn: SourceConnection,
  filter: TableFilter,
  schemas: ReadonlySet<string>,
  log: Logger,
): Promise<ObjectStatement[]> {
  await objectPrivilegeWarning(conn, schemas, log);
  const inSchema = (s: string) => schemas.has(s) && filter.includesSchema(s);
  const out: ObjectStatement[] = [];
  const routines = await rows(
    conn,
    'SELECT ROUTINE_SCHEMA AS s, ROUTINE_NAME AS n, ROUTINE_TYPE AS k FROM information_schema.ROUTINES ' +
      "WHERE ROUTINE_TYPE IN ('PROCEDURE', 'FUNCTION') ORDER BY ROUTINE_SCHEMA, ROUTINE_TYPE, ROUTINE_NAME",
  );
  for (const r of routines) {
    const o: Found = { kind: String(r['k']).toLowerCase() as ObjectKind, schema: String(r['s']), name: String(r['n']) };
    if (!inSchema(o.schema)) continue;
    out.push({ schema: o.schema, sql: `DROP ${SHOW_CREATE[o.kind].what} IF EXISTS ${qualified(o.schema, o.name)}` });
    out.push({ schema: o.schema, sql: await definition(conn, o) });
  }
  const views: (Found & { text: string })[] = [];
  for (const r of await rows(
    conn,
    'SELECT TABLE_SCHEMA AS s, TABLE_NAME AS n FROM information_schema.VIEWS ORDER BY TABLE_SCHEMA, TABLE_NAME',
  )) {
    const o: Found = { kind: 'view', schema: String(r['s']), name: String(r['n']) };
    if (filter.includesTable(o.schema, o.name)) views.push({ ...o, text: await definition(conn, o) });
  }
  for (const v of viewOrder(views)) {
    out.push({ schema: v.schema, sql: `DROP VIEW IF EXISTS ${qualified(v.schema, v.name)}` });
    out.push({ schema: v.schema, sql: v.text });
  }
  for (const r of await rows(
    conn,
    'SELECT TRIGGER_SCHEMA AS s, TRIGGER_NAME AS n, EVENT_OBJECT_TABLE AS t FROM information_schema.TRIGGERS ' +
      'ORDER BY TRIGGER_SCHEMA, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER',
  )) {
    const o: Found = { kind: 'trigger', schema: String(r['s']), name: String(r['n']) };
    if (filter.includesTable(o.schema, String(r['t']))) out.push({ schema: o.schema, sql: await definition(conn, o) });
  }
  for (const r of await rows(
    conn,
    'SELECT EVENT_SCHEMA AS s, EVENT_NAME AS n FROM information_schema.EVENTS ORDER BY EVENT_SCHEMA, EVENT_NAME',
  )) {
    const o: Found = { kind: 'event', schema: String(r['s']), name: String(r['n']) };
    if (!inSchema(o.schema)) continue;
    out.push({ schema: o.schema, sql: `DROP EVENT IF EXISTS ${qualified(o.schema, o.name)}` });
    out.push({ schema: o.schema, sql: await definition(conn, o) });
  }
  return out;
}

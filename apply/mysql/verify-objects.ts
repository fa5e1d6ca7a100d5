/**
 * verify for schema objects (issue #16): every view, procedure, function, trigger and event the include set covers
 * (the rules of capture: a view by its name as a table, a trigger by its table, a routine or event by its schema),
 * on either server, compared by its SHOW CREATE text normalised (mysql/objects.ts normaliseDefinition: the
 * replica's trigger guard stripped, DISABLE ON SLAVE read as ENABLE; the definer is compared) and, for events, by
 * status (the source's ENABLED is the replica's SLAVESIDE_DISABLED). An object on one side only is a difference, and
 * so is a routine whose definition an account may not read (MariaDB before 11.3 shows it only to its definer and to
 * accounts with SELECT on mysql.proc).
 */
import type mysql from 'mysql2/promise';
import type { ObjectResult } from '../../engine/target.ts';
import { normaliseDefinition, type ObjectKind, SHOW_CREATE } from '../../mysql/objects.ts';
import { qualified } from '../../mysql/sql.ts';

export interface ObjectFilter {
  readonly includesSchema: (schema: string) => boolean;
  readonly includesTable: (schema: string, table: string) => boolean;
}

interface Found {
  readonly kind: ObjectKind;
  readonly schema: string;
  readonly name: string;
  /** The trigger's table, the event's status. */
  readonly extra: string;
}

const LIST_SQL =
  "SELECT LOWER(ROUTINE_TYPE) AS k, ROUTINE_SCHEMA AS s, ROUTINE_NAME AS n, '' AS x FROM information_schema.ROUTINES " +
  "WHERE ROUTINE_TYPE IN ('PROCEDURE', 'FUNCTION') " +
  "UNION ALL SELECT 'view', TABLE_SCHEMA, TABLE_NAME, '' FROM information_schema.VIEWS " +
  "UNION ALL SELECT 'trigger', TRIGGER_SCHEMA, TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS " +
  "UNION ALL SELECT 'event', EVENT_SCHEMA, EVENT_NAME, STATUS FROM information_schema.EVENTS";

/** SHOW CREATE PROCEDURE/FUNCTION gives NULL to an account that is not the definer and may not read mysql.proc. */
const UNREADABLE = '\u0000unreadable';

function included(o: Found, f: ObjectFilter): boolean {
  if (o.kind === 'view') return f.includesTable(o.schema, o.name);
  if (o.kind === 'trigger') return f.includesTable(o.schema, o.extra);
  return f.includesSchema(o.schema);
}

/** Each included object → its comparable form (status | normalised definition). */
async function definitions(c: mysql.Connection, f: ObjectFilter, replica: boolean): Promise<Map<string, string>> {
  const [rows] = await c.query<mysql.RowDataPacket[]>(LIST_SQL);
  const out = new Map<string, string>();
  for (const r of rows) {
    const o: Found = {
      kind: String(r['k']) as ObjectKind,
      schema: String(r['s']),
      name: String(r['n']),
      extra: String(r['x']),
    };
    if (!included(o, f)) continue;
    const show = SHOW_CREATE[o.kind];
    const [[row]] = (await c.query({
      sql: `SHOW CREATE ${show.what} ${qualified(o.schema, o.name)}`,
      rowsAsArray: true,
    })) as unknown as [unknown[][]];
    const def = row?.[show.col];
    if (def === null || def === undefined) {
      out.set(`${o.kind}\u0000${o.schema}\u0000${o.name}`, UNREADABLE);
      continue;
    }
    const text = normaliseDefinition(o.kind, String(def));
    const status = o.kind !== 'event' ? '' : replica && o.extra === 'SLAVESIDE_DISABLED' ? 'ENABLED' : o.extra;
    out.set(`${o.kind}\u0000${o.schema}\u0000${o.name}`, `${status}|${text}`);
  }
  return out;
}

/** Why the source's entry `x` and the replica's `y` (`status|definition`) differ; undefined when equal. */
function difference(x: string | undefined, y: string | undefined): string | undefined {
  if (x === undefined) return 'not on the source';
  if (y === undefined) return 'not on the replica';
  if (x === UNREADABLE || y === UNREADABLE) {
    return `definition not readable on the ${x === UNREADABLE ? 'source' : 'replica'}: grant that account SELECT ON mysql.proc`;
  }
  if (x === y) return undefined;
  const [xs] = x.split('|');
  const [ys] = y.split('|');
  return xs !== ys ? `status ${xs} on the source, ${ys || '?'} on the replica` : 'definitions differ';
}

/** Compares the included objects of both servers; sorted by kind, schema, name. */
export async function verifyObjects(
  src: mysql.Connection,
  rep: mysql.Connection,
  f: ObjectFilter,
): Promise<ObjectResult[]> {
  const a = await definitions(src, f, false);
  const b = await definitions(rep, f, true);
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort();
  return keys.map((k) => {
    const [kind = '', schema = '', name = ''] = k.split('\u0000');
    const x = a.get(k);
    const y = b.get(k);
    const differs = difference(x, y);
    return { kind, schema, name, equal: differs === undefined, ...(differs ? { differs } : {}) };
  });
}

/**
 * Reads privileges out of SHOW GRANTS lines. Only the privilege list and the object are parsed (the text up to
 * " TO "); the rest of a line can hold a password hash and is never kept or logged. The account checks of the
 * one MySQL layer: capture/mysql/prerequisites.ts asks them whether the source account can replicate and read.
 * Pure.
 */

export interface Grants {
  /** Privileges on *.* (upper case, e.g. "REPLICATION SLAVE"); "ALL PRIVILEGES" stands for all. */
  readonly global: ReadonlySet<string>;
  /** Schema-level grants: the schema part is a LIKE pattern (% and _, \ escapes), as the server treats it. */
  readonly schemas: readonly { readonly pattern: string; readonly privileges: ReadonlySet<string> }[];
  /** Table-level grants. */
  readonly tables: readonly {
    readonly schema: string;
    readonly table: string;
    readonly privileges: ReadonlySet<string>;
  }[];
  /** The account holds roles, whose privileges SHOW GRANTS for the user alone does not list. */
  readonly hasRoles: boolean;
}

function splitPrivileges(list: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of list) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  // Column-level grants ("SELECT (`a`)") do not give table-wide access: drop them.
  return out.map((p) => p.trim().toUpperCase()).filter((p) => p !== '' && !p.includes('('));
}

const PART = '(?:`((?:[^`]|``)*)`|([A-Za-z0-9_$%\\\\]+)|(\\*))';
const OBJECT = new RegExp(`^${PART}\\.${PART}$`);

function unquote(quoted: string | undefined, bare: string | undefined): string | undefined {
  if (quoted !== undefined) return quoted.replaceAll('``', '`');
  return bare;
}

export function parseGrants(lines: readonly string[]): Grants {
  const global = new Set<string>();
  const schemas: { pattern: string; privileges: Set<string> }[] = [];
  const tables: { schema: string; table: string; privileges: Set<string> }[] = [];
  let hasRoles = false;
  for (const line of lines) {
    const m = /^GRANT\s+(.+?)\s+ON\s+(.+?)\s+TO\s/s.exec(line);
    if (!m?.[1] || !m[2]) {
      if (/^GRANT\s+\S+\s+TO\s/.test(line)) hasRoles = true; // GRANT `role` TO `user`@`host`
      continue;
    }
    const privileges = new Set(splitPrivileges(m[1]));
    const obj = OBJECT.exec(m[2].trim());
    if (!obj) continue; // PROCEDURE/FUNCTION/PROXY grants
    const schema = obj[3] ? '*' : unquote(obj[1], obj[2]);
    const table = obj[6] ? '*' : unquote(obj[4], obj[5]);
    if (schema === undefined || table === undefined) continue;
    if (schema === '*') for (const p of privileges) global.add(p);
    else if (table === '*') schemas.push({ pattern: schema, privileges });
    else tables.push({ schema, table, privileges });
  }
  return { global, schemas, tables, hasRoles };
}

/** MySQL LIKE matching for schema-level grant patterns: % any run, _ one character, \ escapes. */
export function likeMatch(pattern: string, name: string): boolean {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '\\' && i + 1 < pattern.length) {
      re += pattern[++i]!.replace(/[\\^$.|?*+()[\]{}/-]/g, '\\$&');
    } else if (ch === '%') re += '.*';
    else if (ch === '_') re += '.';
    else re += ch.replace(/[\\^$.|?*+()[\]{}/-]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 'su').test(name);
}

function has(set: ReadonlySet<string>, privilege: string): boolean {
  return set.has(privilege) || set.has('ALL PRIVILEGES') || set.has('ALL');
}

export function hasGlobal(g: Grants, ...anyOf: string[]): boolean {
  return anyOf.some((p) => has(g.global, p));
}

/** SELECT on the whole schema, globally, or on at least one of its tables (a deliberate per-table setup). */
export function canSelectSchema(g: Grants, schema: string): boolean {
  if (has(g.global, 'SELECT')) return true;
  if (g.schemas.some((s) => likeMatch(s.pattern, schema) && has(s.privileges, 'SELECT'))) return true;
  return g.tables.some((t) => t.schema === schema && has(t.privileges, 'SELECT'));
}

/** `privilege` on the whole schema: globally or by a schema-level grant (table-level grants do not count). */
export function hasOnSchema(g: Grants, schema: string, privilege: string): boolean {
  return (
    has(g.global, privilege) || g.schemas.some((s) => likeMatch(s.pattern, schema) && has(s.privileges, privilege))
  );
}

/**
 * What the server shows an account of a schema's objects: without SHOW VIEW a view's definition is refused, and
 * without TRIGGER or EVENT the schema's triggers or events are silently left out of information_schema. The
 * privileges among those three that `g` lacks on `schema`.
 */
export function missingObjectPrivileges(g: Grants, schema: string): string[] {
  return ['SHOW VIEW', 'TRIGGER', 'EVENT'].filter((p) => !hasOnSchema(g, schema, p));
}

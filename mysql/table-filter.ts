/**
 * Which tables a source captures: include/exclude "schema.table" glob patterns from the config (`*` any run of
 * characters, `?` one character; matched case-sensitively against whole names, as the server does on Linux).
 * System schemas and tidemark's own schema are never captured, whatever the patterns say. Pure.
 */
import { ByTable } from '../core/collections.ts';

/** Never captured: the server's own schemas and tidemark's bookkeeping schema on targets. */
export const ALWAYS_EXCLUDED_SCHEMAS: ReadonlySet<string> = new Set([
  'mysql',
  'information_schema',
  'performance_schema',
  'sys',
  'tidemark',
]);

export interface TableFilter {
  /** Is changes to `schema`.`table` captured? */
  includesTable(schema: string, table: string): boolean;
  /** Could some table of `schema` be captured (used for CREATE/DROP DATABASE)? */
  includesSchema(schema: string): boolean;
}

interface Pattern {
  readonly schema: RegExp;
  readonly table: RegExp;
  /** The table part is exactly "*": the pattern covers the whole schema. */
  readonly wholeSchema: boolean;
}

/** Turns a glob with * and ? into an anchored RegExp; every other character matches itself. */
export function globToRegExp(glob: string): RegExp {
  let src = '';
  for (const ch of glob) {
    if (ch === '*') src += '.*';
    else if (ch === '?') src += '.';
    else src += ch.replace(/[\\^$.|+()[\]{}/-]/g, '\\$&');
  }
  return new RegExp(`^${src}$`, 'su');
}

function parsePattern(p: string): Pattern {
  const dot = p.indexOf('.');
  if (dot <= 0 || dot === p.length - 1) {
    throw new Error(`table pattern "${p}" is not of the form schema.table`);
  }
  const tablePart = p.slice(dot + 1);
  return { schema: globToRegExp(p.slice(0, dot)), table: globToRegExp(tablePart), wholeSchema: tablePart === '*' };
}

export function isAlwaysExcludedSchema(schema: string): boolean {
  return ALWAYS_EXCLUDED_SCHEMAS.has(schema.toLowerCase());
}

export function createTableFilter(include: readonly string[], exclude: readonly string[]): TableFilter {
  const inc = include.map(parsePattern);
  const exc = exclude.map(parsePattern);
  // By schema, then table: the lookup runs for every binlog event, and a joined key string was ~1 % of capture.
  const cache = new ByTable<boolean>(1_000, 10_000);
  const decide = (schema: string, table: string): boolean => {
    if (isAlwaysExcludedSchema(schema)) return false;
    if (exc.some((p) => p.schema.test(schema) && p.table.test(table))) return false;
    return inc.some((p) => p.schema.test(schema) && p.table.test(table));
  };
  return {
    includesTable(schema, table) {
      let v = cache.get(schema, table);
      if (v === undefined) {
        v = decide(schema, table);
        cache.set(schema, table, v);
      }
      return v;
    },
    includesSchema(schema) {
      if (isAlwaysExcludedSchema(schema)) return false;
      if (exc.some((p) => p.wholeSchema && p.schema.test(schema))) return false;
      return inc.some((p) => p.schema.test(schema));
    },
  };
}

/** Schema names that include patterns spell out literally (no * or ?), minus the always-excluded ones. */
export function literalSchemas(include: readonly string[]): string[] {
  const out = new Set<string>();
  for (const p of include) {
    const schema = p.slice(0, Math.max(0, p.indexOf('.')));
    if (schema !== '' && !/[*?]/.test(schema) && !isAlwaysExcludedSchema(schema)) out.add(schema);
  }
  return [...out].sort();
}

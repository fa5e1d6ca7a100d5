/**
 * DDL of a PostgreSQL source as capture journals it (pure). The event triggers of ddl-triggers.sql write a
 * transactional logical message 'tidemark.ddl' (JSON: command tag, the statement text `current_query()`, the current
 * schema, the objects it created, changed or dropped); `parseDdlMessage` reads it. `statementProblem` says why a
 * statement text cannot be run again on a target (several statements in one query string, DDL run from a DO
 * block or a function, CREATE TABLE AS which copies rows the stream sends too); `truncateSql` is the statement a
 * pgoutput Truncate message becomes.
 */
import { z } from 'zod';
import { TidemarkError } from '../../core/errors.ts';
import { qualifiedName } from '../../postgres/sql.ts';

export const DDL_MESSAGE_PREFIX = 'tidemark.ddl';

const oidSchema = z
  .union([z.number().int(), z.string().regex(/^\d+$/).transform(Number), z.null()])
  .optional()
  .transform((v) => v ?? null);

const objectSchema = z.object({
  type: z.string(),
  schema: z
    .string()
    .nullable()
    .optional()
    .transform((v) => v ?? null),
  identity: z.string(),
  name: z
    .string()
    .nullable()
    .optional()
    .transform((v) => v ?? null),
  oid: oidSchema,
  relid: oidSchema,
});

const messageSchema = z.object({
  tag: z.string().min(1),
  sql: z.string(),
  schema: z
    .string()
    .nullable()
    .transform((v) => v ?? ''),
  search_path: z.string().optional(),
  objects: z.array(objectSchema),
});

export type DdlObject = z.infer<typeof objectSchema>;
export type DdlMessage = z.infer<typeof messageSchema>;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The content of a 'tidemark.ddl' message; malformed content is PG_PROTOCOL (never skipped). */
export function parseDdlMessage(content: Uint8Array): DdlMessage {
  try {
    return messageSchema.parse(JSON.parse(utf8.decode(content)));
  } catch (err) {
    throw new TidemarkError(
      `logical message '${DDL_MESSAGE_PREFIX}' is not the JSON of tidemark's event triggers: ${(err as Error).message}` +
        ' (re-run capture/postgres/ddl-triggers.sql as a superuser)',
      { code: 'PG_PROTOCOL', cause: err, context: { prefix: DDL_MESSAGE_PREFIX } },
    );
  }
}

/** Statement keywords whose text capture re-runs on a target. */
const DDL_KEYWORDS = new Set(['CREATE', 'ALTER', 'DROP', 'COMMENT', 'GRANT', 'REVOKE', 'SECURITY', 'REINDEX']);
/** Command tags that copy rows (the stream sends them too) or are not the text's own statement. */
const REFUSED_TAGS = new Set(['CREATE TABLE AS', 'SELECT INTO']);

/**
 * The text with comments and quoted parts (string, E-string, quoted identifier, dollar-quoted body) blanked out,
 * so `;` and keywords can be looked for. Unterminated quotes run to the end, as the server would refuse them.
 */
export function codeOnly(sql: string): string {
  let out = '';
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i] as string;
    const next = sql[i + 1];
    if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end;
      out += ' ';
    } else if (c === '/' && next === '*') {
      let depth = 1; // PostgreSQL block comments nest
      i += 2;
      while (i < n && depth > 0) {
        const two = sql.slice(i, i + 2);
        if (two === '/*' || two === '*/') {
          depth += two === '/*' ? 1 : -1;
          i += 2;
        } else i++;
      }
      out += ' ';
    } else if (c === "'" || c === '"') {
      const escapes = c === "'" && /[eE]/.test(sql[i - 1] ?? '') && !/\w/.test(sql[i - 2] ?? '');
      i++;
      while (i < n) {
        if (escapes && sql[i] === '\\') i += 2;
        else if (sql[i] === c && sql[i + 1] === c) i += 2;
        else if (sql[i] === c) break;
        else i++;
      }
      i++;
      out += ' ';
    } else if (c === '$' && !/\w/.test(sql[i - 1] ?? '')) {
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
      if (!m) {
        out += c;
        i++;
        continue;
      }
      const end = sql.indexOf(m[0], i + m[0].length);
      i = end < 0 ? n : end + m[0].length;
      out += ' ';
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Why the statement text cannot be replayed on a target, or null when it can (one DDL statement). */
export function statementProblem(tag: string, sql: string): string | null {
  if (REFUSED_TAGS.has(tag)) return `${tag} copies rows that the stream carries too`;
  const code = codeOnly(sql);
  const parts = code.split(';').filter((p) => p.trim() !== '');
  if (parts.length !== 1) {
    return `the query string holds ${parts.length} statements (send DDL as a statement of its own)`;
  }
  const first = /^\s*([A-Za-z]+)/.exec(parts[0] as string)?.[1]?.toUpperCase() ?? '';
  if (!DDL_KEYWORDS.has(first)) {
    return `the DDL ran inside a ${first || 'statement'} statement (a DO block or a function), not as the statement itself`;
  }
  return null;
}

/** The statement a pgoutput Truncate message becomes (the message lists cascaded tables itself). */
export function truncateSql(tables: readonly { schema: string; table: string }[], restartIdentity: boolean): string {
  const names = tables.map((t) => qualifiedName(t.schema, t.table)).join(', ');
  return `TRUNCATE TABLE ${names}${restartIdentity ? ' RESTART IDENTITY' : ''}`;
}

/**
 * Identifier and literal quoting for PostgreSQL statements, through `pg`'s own escapeIdentifier/escapeLiteral
 * (double quotes doubled; single quotes doubled, backslashes doubled and an E'' literal when there are any), so
 * the rules are those of the driver that sends the text. Pure. They come from pg's lib/utils.js alone
 * (pg-utils.d.ts): loading the whole driver for them cost every CLI command ~15 ms at start.
 */
import pgUtils from 'pg/lib/utils.js';

const { escapeIdentifier, escapeLiteral } = pgUtils;

/** `"name"`: any identifier, always quoted (case and reserved words kept). */
export function quoteIdent(name: string): string {
  return escapeIdentifier(name);
}

/** `"schema"."table"`. */
export function qualifiedName(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}

/** A string literal: `'it''s'`, or `E'a\\b'` when the text holds a backslash. */
export function quoteLiteral(text: string): string {
  if (text.includes('\u0000')) throw new RangeError('a PostgreSQL text literal cannot hold a NUL character');
  return escapeLiteral(text);
}

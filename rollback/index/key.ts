/**
 * Canonical row keys for the rollback index. Pure: no I/O.
 *
 * keyText: the primary-key values of a row, in key order, as a JSON array of strings (bigint → decimal,
 * number → String(n), string → itself, Uint8Array → "0x" + lower-case hex, null → null). Two rows have the same
 * key exactly when their key texts are equal, whatever the table's column types.
 *
 * parseKeyArg turns what a user types after `--key` into the same text:
 *   id=42                      one column
 *   order_id=7,line=3          several columns, in any order; every key column exactly once
 *   42                         bare value, only for a single-column key
 * A value is taken as written (after the first "="; later "=" belong to the value): it must match how the value
 * is shown in the history — integers in plain decimal, binary values as 0x…, DATETIME as "YYYY-MM-DD hh:mm:ss".
 * A comma inside a value is written "\,", a backslash "\\". Column names match case-insensitively (as in MySQL).
 */
import { TidemarkError } from '../../core/errors.ts';
import type { Value } from '../../record/record.ts';

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function valueText(v: Value): string | null {
  if (v === null) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'bigint' || typeof v === 'number') return String(v);
  let s = '0x';
  for (let i = 0; i < v.length; i++) s += HEX[v[i] as number];
  return s;
}

/** The canonical key text of key values (in primary-key order). */
export function keyText(values: readonly Value[]): string {
  // Built by hand for the common single-value case: this runs once per indexed row change.
  if (values.length === 1) {
    const t = valueText(values[0] as Value);
    return t === null ? '[null]' : `[${JSON.stringify(t)}]`;
  }
  const out = new Array<string | null>(values.length);
  for (let i = 0; i < values.length; i++) out[i] = valueText(values[i] as Value);
  return JSON.stringify(out);
}

/**
 * A 53-bit hash of a key text (a safe integer, ≥ 0): cyrb53 (public domain), two 32-bit multiplicative lanes
 * mixed at the end. Not cryptographic; equal hashes do not prove equal keys.
 */
export function keyHash(text: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

function usage(message: string, arg: string): TidemarkError {
  return new TidemarkError(message, { code: 'USAGE', context: { key: arg } });
}

/** Splits on commas not preceded by a backslash and resolves the escapes "\," and "\\". */
function splitParts(arg: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < arg.length; i++) {
    const c = arg[i] as string;
    if (c === '\\' && (arg[i + 1] === ',' || arg[i + 1] === '\\')) {
      cur += arg[i + 1];
      i++;
    } else if (c === ',') {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  return parts;
}

/**
 * The key text for a `--key` argument, given the table's primary-key columns (in key order). Throws a USAGE
 * TidemarkError naming the key columns when the argument does not name each of them exactly once.
 */
export function parseKeyArg(arg: string, pk: readonly string[]): string {
  const cols = pk.join(', ');
  if (pk.length === 0) throw usage('the table has no primary key: rows cannot be picked by --key', arg);
  const expected = `expected ${pk.map((c) => `${c}=…`).join(',')}`;
  // A bare value for a one-column key (an "=" could also be part of the value, so only without any "=").
  if (pk.length === 1 && !arg.includes('=')) return keyText([splitParts(arg).join(',')]);
  const values = new Array<string | undefined>(pk.length);
  const lower = pk.map((c) => c.toLowerCase());
  for (const part of splitParts(arg)) {
    const eq = part.indexOf('=');
    if (eq < 0) throw usage(`--key "${arg}": "${part}" is not column=value (${expected})`, arg);
    const name = part.slice(0, eq).trim();
    let i = pk.indexOf(name);
    if (i < 0) i = lower.indexOf(name.toLowerCase());
    if (i < 0) throw usage(`--key "${arg}": "${name}" is not a primary-key column (the key is ${cols})`, arg);
    if (values[i] !== undefined) throw usage(`--key "${arg}": column ${pk[i]} is given twice`, arg);
    values[i] = part.slice(eq + 1);
  }
  const missing = pk.filter((_, i) => values[i] === undefined);
  if (missing.length > 0) {
    throw usage(`--key "${arg}": missing ${missing.join(', ')} (the key is ${cols}; ${expected})`, arg);
  }
  return keyText(values as string[]);
}

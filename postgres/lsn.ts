/**
 * PostgreSQL log sequence numbers as bigint, and their text form "XXXXXXXX/XXXXXXXX" (pg_lsn: two hexadecimal
 * halves of the 64-bit position, upper case, no leading zeros). Pure.
 */
import { TidemarkError } from '../core/errors.ts';

const MAX = (1n << 64n) - 1n;

/** "16/B374D848" → 0x16B374D848n. Throws PG_PROTOCOL on anything that is not a pg_lsn. */
export function parseLsn(text: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!m) throw new TidemarkError(`not a PostgreSQL LSN: "${text}"`, { code: 'PG_PROTOCOL', context: { text } });
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** 0x16B374D848n → "16/B374D848" (what pg_lsn prints). */
export function formatLsn(lsn: bigint): string {
  if (lsn < 0n || lsn > MAX) throw new RangeError(`LSN ${lsn} is outside 0..2^64-1`);
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

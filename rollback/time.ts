/**
 * Points in time as the rewind commands take and show them: microseconds since the Unix epoch (bigint), the unit
 * of commit times in the journal. Pure.
 *
 * Accepted input:
 *   2026-11-22T10:41:59Z, 2026-11-22 10:41:59.123456+01:00   ISO 8601 with up to 6 fractional digits; a time
 *                                                             without zone is UTC (the journal's time zone)
 *   1795338119123456                                          microseconds since the epoch (all digits)
 */
import { TidemarkError } from '../core/errors.ts';

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i;

export function parseTimeArg(text: string, what = 'time'): bigint {
  const t = text.trim();
  if (/^\d{1,19}$/.test(t)) return BigInt(t);
  const m = ISO.exec(t);
  if (!m) {
    throw new TidemarkError(
      `${what}: "${t}" is not a time: give ISO 8601 (2026-11-22T10:41:59.123456Z; UTC when no zone) or microseconds since the epoch`,
      { code: 'USAGE' },
    );
  }
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone = 'Z'] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  const check = new Date(ms);
  if (
    Number.isNaN(ms) ||
    check.getUTCFullYear() !== Number(y) ||
    check.getUTCMonth() !== Number(mo) - 1 ||
    check.getUTCDate() !== Number(d) ||
    Number(h) > 23 ||
    Number(mi) > 59 ||
    Number(s) > 59
  ) {
    throw new TidemarkError(`${what}: "${t}" is not a valid date and time`, { code: 'USAGE' });
  }
  let offsetMin = 0;
  if (zone.toUpperCase() !== 'Z') {
    const z = zone.replace(':', '');
    const sign = z.startsWith('-') ? -1 : 1;
    offsetMin = sign * (Number(z.slice(1, 3)) * 60 + Number(z.slice(3, 5)));
  }
  const us = BigInt(ms) * 1000n + BigInt(frac.padEnd(6, '0') || '0') - BigInt(offsetMin) * 60_000_000n;
  return us;
}

/** "2026-11-22T10:41:59.123456Z": ISO 8601 in UTC with all six fractional digits. */
export function formatTimeUs(us: bigint): string {
  const ms = us / 1000n;
  const sub = ((us % 1_000_000n) + 1_000_000n) % 1_000_000n;
  const base = new Date(Number(ms)).toISOString(); // …T10:41:59.123Z
  return `${base.slice(0, 19)}.${sub.toString().padStart(6, '0')}Z`;
}

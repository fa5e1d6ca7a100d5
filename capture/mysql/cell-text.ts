/**
 * Binlog cells that the journal stores as text — DATE, DATETIME2, TIMESTAMP2 and DECIMAL — written from their binary
 * form straight into the exact text zongji prints (row-image.ts). Pure: no I/O.
 *
 * Text is built as ASCII bytes in one scratch buffer and read out as one flat string (Node's latin1Slice):
 * measured ~2x faster than a template of padded pieces (each piece a string, each join another) on DATETIME(6).
 * The byte layouts are MySQL's (mysys/my_time.c, strings/decimal.c); row-image.test.ts pins them against zongji.
 */

const TEXT = new Uint8Array(128);
const latin1Slice = Buffer.prototype.latin1Slice as (this: Uint8Array, start: number, end: number) => string;
const POW10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/** Writes `v` (an integer in [0, 10^width)) as exactly `width` digits ending before `end`. */
function digitsAt(end: number, v: number, width: number): void {
  for (let k = 0; k < width; k++) {
    const q = (v / 10) | 0;
    TEXT[end - 1 - k] = 48 + v - q * 10;
    v = q;
  }
}

/** Whether `v` fits `width` decimal digits (else the cell is not what the type says: left to the slow path). */
function fits(v: number, width: number): boolean {
  return Number.isInteger(v) && v >= 0 && v < POW10[width]!;
}

function pad(n: number, width: number): string {
  const s = String(n);
  return s.length >= width ? s : '0'.repeat(width - s.length) + s;
}

/** Fractional seconds of DATETIME2/TIMESTAMP2: ceil(dec/2) big-endian bytes (odd dec: tenfold), as a number. */
export function fractionValue(buf: Buffer, at: number, dec: number): number {
  let v = buf.readIntBE(at, (dec + 1) >> 1);
  if (dec % 2 !== 0) v /= 10;
  return v < 0 ? -v : v;
}

/**
 * "YYYY-MM-DD hh:mm:ss[.f]" as zongji prints it (a year above 9999 cut to its last four digits), f with exactly
 * `dec` digits; a fraction that does not fit them gets zongji's padding (the value is broken anyway).
 */
function dateTimeText(y: number, mo: number, d: number, h: number, mi: number, s: number, f: number, dec: number) {
  digitsAt(4, y % 10000, 4);
  TEXT[4] = 45;
  digitsAt(7, mo, 2);
  TEXT[7] = 45;
  digitsAt(10, d, 2);
  TEXT[10] = 32;
  digitsAt(13, h, 2);
  TEXT[13] = 58;
  digitsAt(16, mi, 2);
  TEXT[16] = 58;
  digitsAt(19, s, 2);
  if (dec === 0) return latin1Slice.call(TEXT, 0, 19);
  if (!fits(f, dec)) return `${latin1Slice.call(TEXT, 0, 19)}.${pad(f, dec)}`;
  TEXT[19] = 46;
  digitsAt(20 + dec, f, dec);
  return latin1Slice.call(TEXT, 0, 20 + dec);
}

/** Days since 1970-01-01 → [year, month, day] (proleptic Gregorian; H. Hinnant's civil_from_days). */
function civil(days: number): [number, number, number] {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

/** DATE: its 3-byte value (day 5 bits, month 4, year 15) as "YYYY-MM-DD". */
export function dateText(raw: number): string {
  digitsAt(4, ((raw >> 9) & 0x7fff) % 10000, 4);
  TEXT[4] = 45;
  digitsAt(7, (raw >> 5) & 0xf, 2);
  TEXT[7] = 45;
  digitsAt(10, raw & 0x1f, 2);
  return latin1Slice.call(TEXT, 0, 10);
}

/**
 * DATETIME2: its packed 5 bytes read as two big-endian int32 (`high` at the cell, `low` one byte later), `frac` its
 * fractional seconds (fractionValue), as text with `dec` fractional digits.
 */
export function datetime2Text(high: number, low: number, frac: number, dec: number): string {
  const ym = (high & 0x7fffc000) >> 14;
  return dateTimeText(
    Math.floor(ym / 13),
    ym % 13,
    (low >> 17) & 0x1f,
    (low >> 12) & 0x1f,
    (low >> 6) & 0x3f,
    low & 0x3f,
    frac,
    dec,
  );
}

/** TIMESTAMP2: seconds since the epoch (UTC; 0 with no fraction is the zero timestamp) as text. */
export function timestampText(secs: number, frac: number, dec: number): string {
  if (secs === 0 && frac === 0) return dateTimeText(0, 0, 0, 0, 0, 0, 0, dec);
  const days = Math.floor(secs / 86400);
  const s = secs - days * 86400;
  const [y, mo, d] = civil(days);
  return dateTimeText(y, mo, d, Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60, frac, dec);
}

const DIG2BYTES = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
/** Scratch copy of a DECIMAL cell (its sign bit is flipped; the packet must not be changed). At most 30 bytes. */
const SCRATCH = Buffer.alloc(64);

/** Bytes of a DECIMAL(precision, scale) cell (strings/decimal.c decimal_bin_size). */
export function decimalBytes(precision: number, scale: number): number {
  const integral = precision - scale;
  const uInt = Math.floor(integral / 9);
  const uFrac = Math.floor(scale / 9);
  return uInt * 4 + DIG2BYTES[integral - uInt * 9]! + uFrac * 4 + DIG2BYTES[scale - uFrac * 9]!;
}

/** End of the text written to TEXT so far (decimalText's integral groups). */
let textEnd = 0;

/**
 * Appends one integral digit group of a DECIMAL at `textEnd`: groups before the first non-zero one print nothing
 * (leading zeros), that one prints without padding, later ones with. False if `v` does not fit `width` digits.
 */
function integralGroup(v: number, width: number, signEnd: number): boolean {
  if (!fits(v, width)) return false;
  let w = width;
  if (textEnd === signEnd) {
    if (v === 0) return true;
    w = 1;
    while (w < width && v >= POW10[w]!) w++;
  }
  digitsAt(textEnd + w, v, w);
  textEnd += w;
  return true;
}

/**
 * DECIMAL(p,s) binary form (strings/decimal.c decimal2bin; decimalBytes(p, s) bytes) → the exact text zongji gives
 * (leading zeros of the integral part dropped, at least one digit; exactly s fractional digits). A digit group out
 * of its range (a broken cell) gives null.
 */
export function decimalText(buf: Buffer, at: number, precision: number, scale: number): string | null {
  const integral = precision - scale;
  const uInt = Math.floor(integral / 9);
  const uFrac = Math.floor(scale / 9);
  const cInt = integral - uInt * 9;
  const cFrac = scale - uFrac * 9;
  const size = decimalBytes(precision, scale);
  buf.copy(SCRATCH, 0, at, at + size);
  const positive = (SCRATCH[0]! & 0x80) !== 0;
  SCRATCH[0] = SCRATCH[0]! ^ 0x80;
  const mask = positive ? 0 : -1;
  let p = 0;
  let n = 0;
  if (!positive) TEXT[n++] = 45;
  const signEnd = n;
  const cIntSize = DIG2BYTES[cInt]!;
  let ok = true;
  textEnd = n;
  if (cIntSize > 0) {
    ok = integralGroup(SCRATCH.readIntBE(0, cIntSize) ^ mask, cInt, signEnd);
    p += cIntSize;
  }
  for (let i = 0; i < uInt; i++) {
    ok = integralGroup(SCRATCH.readInt32BE(p) ^ mask, 9, signEnd) && ok;
    p += 4;
  }
  n = textEnd;
  if (n === signEnd) TEXT[n++] = 48;
  if (scale > 0) {
    TEXT[n++] = 46;
    for (let i = 0; i < uFrac; i++) {
      const v = SCRATCH.readInt32BE(p) ^ mask;
      ok = fits(v, 9) && ok;
      if (ok) digitsAt(n + 9, v, 9);
      n += 9;
      p += 4;
    }
    const cFracSize = DIG2BYTES[cFrac]!;
    if (cFracSize > 0) {
      const v = SCRATCH.readIntBE(p, cFracSize) ^ mask;
      ok = fits(v, cFrac) && ok;
      if (ok) digitsAt(n + cFrac, v, cFrac);
      n += cFrac;
    }
  }
  return ok ? latin1Slice.call(TEXT, 0, n) : null;
}

/**
 * How journal frames live in a Redis stream, and the pure decisions around it: entry IDs, fields, replies,
 * the server's durability settings, and how far a stream may be trimmed. No I/O.
 *
 * One stream per source. A frame is one entry whose ID is `<lsn>-0`: IDs are the LSNs, so XADD itself refuses an
 * LSN at or below the stream's top (idempotent by construction: a frame can never be added twice). Fields:
 *
 *   v  "1"          format version
 *   s  source name  a receiver refuses entries of another source
 *   f  "1" | "0"    end of unit
 *   c  CRC-32       decimal, over u64 LSN ‖ u8 flags (big-endian) ‖ payload
 *   p  payload      the frame's bytes (binary-safe; Redis bulk strings hold up to 512 MB)
 */
import { crc32 } from 'node:zlib';
import { CorruptionError, TidemarkError } from '../../core/errors.ts';
import type { WireFrame } from '../frame.ts';

export const REDIS_FORMAT_VERSION = '1';

export function entryId(lsn: bigint): string {
  return `${lsn}-0`;
}

/** The LSN of an entry ID written by tidemark ("<lsn>-0"); anything else is a foreign entry. */
export function lsnOfId(id: string, key: string): bigint {
  const m = /^(\d{1,20})-0$/.exec(id);
  if (!m) {
    throw new CorruptionError(`redis stream ${key}: entry ID "${id}" was not written by tidemark (expected <lsn>-0)`, {
      key,
      id,
    });
  }
  return BigInt(m[1] as string);
}

export function frameCrc(lsn: bigint, endOfUnit: boolean, payload: Uint8Array): number {
  const prefix = new Uint8Array(9);
  new DataView(prefix.buffer).setBigUint64(0, lsn, false);
  prefix[8] = endOfUnit ? 1 : 0;
  return crc32(payload, crc32(prefix));
}

/** XADD arguments after the key: ID and fields. */
export function xaddArgs(source: string, f: WireFrame): (string | Buffer)[] {
  return [
    entryId(f.lsn),
    'v',
    REDIS_FORMAT_VERSION,
    's',
    source,
    'f',
    f.endOfUnit ? '1' : '0',
    'c',
    String(frameCrc(f.lsn, f.endOfUnit, f.payload)),
    'p',
    Buffer.from(f.payload.buffer, f.payload.byteOffset, f.payload.length),
  ];
}

export interface RawEntry {
  readonly id: string;
  readonly fields: readonly Buffer[];
}

/** Decodes and checks one entry of `source`'s stream. Damage or a foreign entry is a CorruptionError. */
export function decodeEntry(e: RawEntry, source: string, key: string): WireFrame {
  const lsn = lsnOfId(e.id, key);
  const where = `redis stream ${key} entry ${e.id}`;
  const get = (name: string): Buffer => {
    for (let i = 0; i + 1 < e.fields.length; i += 2) {
      if ((e.fields[i] as Buffer).toString('latin1') === name) return e.fields[i + 1] as Buffer;
    }
    throw new CorruptionError(`${where}: field ${name} is missing`, { key, id: e.id });
  };
  const v = get('v').toString('latin1');
  if (v !== REDIS_FORMAT_VERSION) throw new CorruptionError(`${where}: format version "${v}" is unknown`);
  const s = get('s').toString('utf8');
  if (s !== source) throw new CorruptionError(`${where}: entry of source "${s}" in the stream of source "${source}"`);
  const f = get('f').toString('latin1');
  if (f !== '0' && f !== '1') throw new CorruptionError(`${where}: field f is "${f}"`);
  const c = get('c').toString('latin1');
  const payload = get('p');
  const endOfUnit = f === '1';
  const actual = frameCrc(lsn, endOfUnit, payload);
  if (!/^\d{1,10}$/.test(c) || Number(c) !== actual) {
    throw new CorruptionError(`${where}: checksum mismatch for LSN ${lsn}`, { key, lsn, actual });
  }
  return { lsn, endOfUnit, payload };
}

function str(x: unknown): string {
  return Buffer.isBuffer(x) ? x.toString('latin1') : String(x);
}

/** Entries of `key` from an XREAD/XREADGROUP reply (RESP2, buffers): [[key, [[id, [f, v, …]], …]], …]. */
export function parseReadReply(reply: unknown, key: string): RawEntry[] {
  if (reply === null || reply === undefined) return [];
  const out: RawEntry[] = [];
  for (const stream of reply as [unknown, [unknown, unknown[] | null][]][]) {
    if (str(stream[0]) !== key) continue;
    for (const [id, fields] of stream[1]) {
      // A null field list: an entry deleted after it entered the group's pending list.
      out.push({ id: str(id), fields: (fields ?? []).map((x) => (Buffer.isBuffer(x) ? x : Buffer.from(String(x)))) });
    }
  }
  return out;
}

/** A flat [name, value, name, value…] reply (XINFO …) as a map with string keys. */
export function flatMap(reply: unknown): Map<string, unknown> {
  const m = new Map<string, unknown>();
  const a = reply as unknown[];
  for (let i = 0; i + 1 < a.length; i += 2) m.set(str(a[i]), a[i + 1]);
  return m;
}

export interface StreamInfo {
  readonly length: number;
  /** LSN of the highest ID ever added (also when trimmed away since); 0n for a stream never written. */
  readonly lastLsn: bigint;
  /** LSN of the first entry still present, or null when the stream is empty. */
  readonly firstLsn: bigint | null;
  /**
   * lastLsn when the stream's last entry is that frame and it ends a unit (field f = 1), else null. A shipper
   * that resumes learns from it that the stream holds complete units up to lastLsn, also when the session that
   * added them ended before their reply (so the standby's unit acknowledgement does not wait for more frames).
   */
  readonly lastUnitLsn: bigint | null;
}

export function parseStreamInfo(reply: unknown, key: string): StreamInfo {
  const m = flatMap(reply);
  const last = str(m.get('last-generated-id') ?? '0-0');
  const first = m.get('first-entry') as unknown[] | null | undefined;
  const lastLsn = last === '0-0' ? 0n : lsnOfId(last, key);
  return {
    length: Number(m.get('length') ?? 0),
    lastLsn,
    firstLsn: first ? lsnOfId(str(first[0]), key) : null,
    lastUnitLsn: lastEntryEndsUnit(m.get('last-entry'), last) ? lastLsn : null,
  };
}

/** XINFO STREAM's last-entry ([id, [field, value, …]]) is the entry `id` and carries f = 1. */
function lastEntryEndsUnit(entry: unknown, id: string): boolean {
  if (!Array.isArray(entry) || id === '0-0' || str(entry[0]) !== id || !Array.isArray(entry[1])) return false;
  const fields = flatMap(entry[1]);
  return fields.has('f') && str(fields.get('f')) === '1';
}

/**
 * Can a receiver continue after `durableLsn` from this stream? Frames above it that are gone (trimmed) mean the
 * standby can no longer catch up from Redis: not retriable.
 */
export function checkReadable(info: StreamInfo, durableLsn: bigint, key: string): void {
  if (info.lastLsn <= durableLsn) return;
  if (info.firstLsn === null || info.firstLsn > durableLsn + 1n) {
    throw new TidemarkError(
      `redis stream ${key}: LSN ${durableLsn + 1n} is no longer in the stream (` +
        (info.firstLsn === null ? 'it is empty' : `it starts at LSN ${info.firstLsn}`) +
        `, last LSN ${info.lastLsn}): it was trimmed before this standby acknowledged it; rebaseline the standby`,
      { code: 'SHIP_GONE', retriable: false, context: { key, durableLsn, firstLsn: info.firstLsn } },
    );
  }
}

/** What the server says about durability (CONFIG GET), or null where it would not say. */
export interface DurabilitySettings {
  readonly appendonly: string | null;
  readonly appendfsync: string | null;
  readonly maxmemory: string | null;
  readonly maxmemoryPolicy: string | null;
}

/**
 * The problems with the server's settings for a ship stream, each naming the setting: an acknowledged XADD must
 * survive a crash (appendonly yes + appendfsync always) and never be evicted (maxmemory-policy noeviction, or
 * no maxmemory at all).
 */
export function durabilityProblems(s: DurabilitySettings): string[] {
  const out: string[] = [];
  if (s.appendonly === null || s.appendfsync === null) {
    out.push('could not read appendonly/appendfsync (CONFIG GET refused?): durability cannot be verified');
  } else {
    if (s.appendonly !== 'yes') out.push(`appendonly is "${s.appendonly}", must be "yes"`);
    if (s.appendfsync !== 'always') {
      out.push(`appendfsync is "${s.appendfsync}", must be "always" (else acknowledged frames can be lost in a crash)`);
    }
  }
  if (s.maxmemory !== null && s.maxmemory !== '0' && s.maxmemoryPolicy !== 'noeviction') {
    out.push(`maxmemory-policy is "${s.maxmemoryPolicy}" with maxmemory ${s.maxmemory}: must be "noeviction"`);
  }
  return out;
}

export interface GroupState {
  readonly name: string;
  /** Entries delivered and not acknowledged. */
  readonly pending: number;
  readonly lastDeliveredLsn: bigint;
  /** Lowest pending LSN (when pending > 0). */
  readonly lowestPendingLsn: bigint | null;
  /** Highest unit-ending LSN this group's receiver acknowledged (its marker), or null. */
  readonly unitLsn: bigint | null;
}

export type TrimPoint = { readonly below: bigint } | { readonly none: string };

/**
 * How far the stream may be trimmed: everything below `below` (XTRIM MINID <below>-0) is acknowledged by every
 * group, as complete units (a standby whose recovery cuts an unfinished unit asks again from its last unit end;
 * those frames must stay). A group without a unit marker holds everything.
 */
export function trimPoint(groups: readonly GroupState[], expectGroups: readonly string[] = []): TrimPoint {
  const missing = expectGroups.filter((g) => !groups.some((x) => x.name === g));
  if (missing.length > 0) return { none: `group(s) ${missing.join(', ')} do not exist yet` };
  if (groups.length === 0) return { none: 'the stream has no consumer group: nothing is known to be acknowledged' };
  let safe: bigint | null = null;
  let why = '';
  for (const g of groups) {
    const acked = g.pending > 0 && g.lowestPendingLsn !== null ? g.lowestPendingLsn - 1n : g.lastDeliveredLsn;
    const mine = g.unitLsn === null ? 0n : g.unitLsn < acked ? g.unitLsn : acked;
    if (safe === null || mine < safe) {
      safe = mine;
      why = `group ${g.name} acknowledged complete units up to LSN ${mine}`;
    }
  }
  if (safe === null || safe === 0n) return { none: why || 'nothing acknowledged' };
  return { below: safe + 1n };
}

/**
 * Binlog event bytes as MariaDB writes them (pure, no I/O): the 19-byte common header, the few event bodies the
 * archiver must understand (GTID, GTID list, Rotate, Format description, the text of a Query), and the CRC32
 * trailer. Everything else is carried as opaque bytes: the archive is the server's file, byte for byte.
 *
 * Layout (sql/log_event.h, MariaDB 10.11): header = timestamp u32 · type u8 · server_id u32 · event_length u32 ·
 * next_position u32 (log_pos: the file offset just after this event; 0 in events a server made up for the
 * stream) · flags u16; then the body; then, when the file's checksum algorithm is CRC32, 4 bytes CRC32 (ISO
 * 3309, `zlib.crc32`) of everything before it. All integers little-endian.
 */
import { crc32 } from 'node:zlib';
import { TidemarkError } from '../../core/errors.ts';

export const HEADER_LEN = 19;
export const BINLOG_MAGIC = Buffer.from([0xfe, 0x62, 0x69, 0x6e]);
export const CHECKSUM_LEN = 4;

/** The event types the archiver looks at (sql/log_event.h Log_event_type). */
export const EV = {
  QUERY: 2,
  STOP: 3,
  ROTATE: 4,
  FORMAT_DESCRIPTION: 15,
  XID: 16,
  HEARTBEAT: 27,
  XA_PREPARE: 38,
  ANNOTATE_ROWS: 160,
  BINLOG_CHECKPOINT: 161,
  GTID: 162,
  GTID_LIST: 163,
} as const;

/** Header flags: the event was made up by the server for the stream (a fake Rotate); the binlog is still open. */
export const FLAG_ARTIFICIAL = 0x20;
export const FLAG_BINLOG_IN_USE = 0x01;
const FLAGS_OFFSET = 17;

/** GTID event flags2 (Gtid_log_event::FL_*). */
export const GTID_FL_STANDALONE = 0x01;
export const GTID_FL_GROUP_COMMIT_ID = 0x02;

export interface EventHeader {
  /** Seconds since the epoch (statement start on the server; 0 in fake events). */
  readonly timestamp: number;
  readonly type: number;
  readonly serverId: number;
  readonly length: number;
  /** File offset after this event; 0 in events the server made up for the stream. */
  readonly nextPos: number;
  readonly flags: number;
}

export interface Gtid {
  readonly domain: number;
  readonly server: number;
  readonly seq: bigint;
}

function corrupt(what: string, context: Record<string, string | number> = {}): TidemarkError {
  return new TidemarkError(`binlog stream: ${what}`, { code: 'BACKUP_LOG_STREAM', retriable: false, context });
}

export function parseHeader(ev: Buffer): EventHeader {
  if (ev.length < HEADER_LEN) throw corrupt(`an event of ${ev.length} bytes is shorter than its 19-byte header`);
  const h = {
    timestamp: ev.readUInt32LE(0),
    type: ev.readUInt8(4),
    serverId: ev.readUInt32LE(5),
    length: ev.readUInt32LE(9),
    nextPos: ev.readUInt32LE(13),
    flags: ev.readUInt16LE(FLAGS_OFFSET),
  };
  if (h.length !== ev.length) {
    throw corrupt(`event of type ${h.type} says it is ${h.length} bytes long but ${ev.length} arrived`, {
      type: h.type,
    });
  }
  return h;
}

export function formatGtid(g: Gtid): string {
  return `${g.domain}-${g.server}-${g.seq}`;
}

/** Parses `domain-server-seq`. */
export function parseGtidText(s: string): Gtid {
  const m = /^(\d+)-(\d+)-(\d+)$/.exec(s.trim());
  if (m === null) throw corrupt(`'${s}' is not a GTID (domain-server-seq)`);
  return { domain: Number(m[1]), server: Number(m[2]), seq: BigInt(m[3] as string) };
}

/** A GTID position (`gtid_binlog_pos` text: comma-separated GTIDs, one per domain) → domain → GTID. */
export function parseGtidPos(s: string | null): Map<number, Gtid> {
  const out = new Map<number, Gtid>();
  for (const part of (s ?? '').split(',')) {
    if (part.trim() === '') continue;
    const g = parseGtidText(part);
    out.set(g.domain, g);
  }
  return out;
}

/** The GTID position text of a domain → GTID map, domains ascending (as the server prints it). */
export function formatGtidPos(pos: ReadonlyMap<number, Gtid>): string {
  return [...pos.values()]
    .sort((a, b) => a.domain - b.domain)
    .map(formatGtid)
    .join(',');
}

/** A GTID event (type 162) body: seq_no u64 · domain_id u32 · flags2 u8 [· commit_id u64]. */
export function parseGtidEvent(ev: Buffer, h: EventHeader): { gtid: Gtid; flags2: number } {
  if (h.type !== EV.GTID || ev.length < HEADER_LEN + 13) throw corrupt(`not a GTID event (type ${h.type})`);
  const seq = ev.readBigUInt64LE(HEADER_LEN);
  const domain = ev.readUInt32LE(HEADER_LEN + 8);
  const flags2 = ev.readUInt8(HEADER_LEN + 12);
  return { gtid: { domain, server: h.serverId, seq }, flags2 };
}

/** A GTID list event (type 163) body: count u32 (low 28 bits) · count × (domain u32 · server u32 · seq u64). */
export function parseGtidList(ev: Buffer, h: EventHeader): Gtid[] {
  if (h.type !== EV.GTID_LIST || ev.length < HEADER_LEN + 4) throw corrupt(`not a GTID list event (type ${h.type})`);
  const count = ev.readUInt32LE(HEADER_LEN) & 0x0fffffff;
  if (ev.length < HEADER_LEN + 4 + count * 16) throw corrupt(`GTID list of ${count} entries is cut short`);
  const out: Gtid[] = [];
  for (let i = 0; i < count; i++) {
    const at = HEADER_LEN + 4 + i * 16;
    out.push({ domain: ev.readUInt32LE(at), server: ev.readUInt32LE(at + 4), seq: ev.readBigUInt64LE(at + 8) });
  }
  return out;
}

/** The checksum algorithm a Format description event declares (the byte before its own CRC): 0 none, 1 CRC32. */
export function checksumAlgOf(fde: Buffer, h: EventHeader): number {
  if (h.type !== EV.FORMAT_DESCRIPTION || fde.length < HEADER_LEN + 57 + CHECKSUM_LEN + 1) {
    throw corrupt(`not a format description event (type ${h.type})`);
  }
  return fde.readUInt8(fde.length - CHECKSUM_LEN - 1);
}

/** True when the last 4 bytes are the CRC32 of the rest. */
export function crcMatches(ev: Buffer): boolean {
  if (ev.length < HEADER_LEN + CHECKSUM_LEN) return false;
  return crc32(ev.subarray(0, ev.length - CHECKSUM_LEN)) === ev.readUInt32LE(ev.length - CHECKSUM_LEN);
}

/** A Rotate event (type 4) body: position u64 · next file name (to the end, before the checksum if any). */
export function parseRotate(ev: Buffer, h: EventHeader, checksummed: boolean): { file: string; position: bigint } {
  if (h.type !== EV.ROTATE || ev.length < HEADER_LEN + 9) throw corrupt(`not a rotate event (type ${h.type})`);
  const end = ev.length - (checksummed ? CHECKSUM_LEN : 0);
  return { position: ev.readBigUInt64LE(HEADER_LEN), file: ev.subarray(HEADER_LEN + 8, end).toString('latin1') };
}

/**
 * The first `max` characters of a Query event's statement (post-header 13 bytes: thread u32 · exec time u32 ·
 * db length u8 · error u16 · status-vars length u16; then the status vars, the db name and a NUL, then the text).
 */
export function queryText(ev: Buffer, h: EventHeader, checksummed: boolean, max = 32): string {
  if (h.type !== EV.QUERY || ev.length < HEADER_LEN + 13) throw corrupt(`not a query event (type ${h.type})`);
  const dbLen = ev.readUInt8(HEADER_LEN + 8);
  const varsLen = ev.readUInt16LE(HEADER_LEN + 11);
  const start = HEADER_LEN + 13 + varsLen + dbLen + 1;
  const end = ev.length - (checksummed ? CHECKSUM_LEN : 0);
  if (start > end) throw corrupt('a query event is shorter than its status variables and database name');
  return ev.subarray(start, Math.min(end, start + max)).toString('latin1');
}

/** A copy of a Format description event with the "binlog in use" flag cleared, as the file has it once closed. */
export function clearInUse(fde: Buffer): Buffer {
  const out = Buffer.from(fde);
  out.writeUInt16LE(out.readUInt16LE(FLAGS_OFFSET) & ~FLAG_BINLOG_IN_USE, FLAGS_OFFSET);
  return out;
}

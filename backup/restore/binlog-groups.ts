/**
 * The event groups (transactions) in a stretch of MariaDB binlog bytes — pure, no I/O. Point-in-time restore
 * uses it to map a wall-clock moment to the last GTID committed at or before it (the segment index gives a
 * segment; this scan gives the exact GTID), and the log fixture of the tests cuts binlog files at group
 * boundaries with it.
 *
 * Only event headers and the GTID event's body are read (MariaDB binlog v4, replication/binlog docs):
 *
 *   header (19 bytes): timestamp u32 · type u8 · server_id u32 · event_size u32 · log_pos u32 · flags u16
 *   GTID_EVENT (0xa2) body: seq_no u64 · domain_id u32 · flags2 u8 · …
 *
 * A group starts at its GTID event and ends where the next GTID event starts (or at the end of the bytes);
 * events that are not part of any group (Rotate, Format_description, Stop, Gtid_list, Binlog_checkpoint,
 * Start_encryption, heartbeats) are not counted into its time. The group's time is the newest event-header
 * timestamp inside it (the commit's: the XID or COMMIT event is written last, at commit).
 * A checksum trailer (CRC32) does not matter: nothing past the GTID body's first 13 bytes is read. CRCs are checked
 * by mariadb-binlog at replay, and the bytes were authenticated by the pipeline before they got here.
 */
import { TidemarkError } from '../../core/errors.ts';

export const BINLOG_MAGIC = Buffer.from([0xfe, 0x62, 0x69, 0x6e]);
const HEADER = 19;
const GTID_EVENT = 0xa2;
/** Events outside any transaction: Stop 3, Rotate 4, Format_description 15, Heartbeat 27, Binlog_checkpoint 161, Gtid_list 163, Start_encryption 164. */
const NOT_IN_GROUP = new Set([3, 4, 15, 27, 161, 163, 164]);

export interface BinlogGroup {
  /** `domain-server-seq`. */
  readonly gtid: string;
  readonly domain: number;
  readonly serverId: number;
  readonly seq: bigint;
  /** Offsets in the scanned bytes (plus `base`): the GTID event's start, and where the group ends. */
  readonly start: bigint;
  readonly end: bigint;
  /** Newest event-header time in the group, seconds since the epoch. */
  readonly time: number;
}

function malformed(what: string, at: bigint): TidemarkError {
  return new TidemarkError(`binlog bytes are malformed at offset ${at}: ${what}`, {
    code: 'BACKUP_INTEGRITY',
    context: { offset: String(at) },
  });
}

/**
 * The groups in `bytes`, which are the binlog file's bytes from offset `base` (0: they begin with the magic) and
 * end on an event boundary. A group still open at the end runs to the end of the bytes.
 */
export function scanGroups(bytes: Buffer, base = 0n): BinlogGroup[] {
  let at = 0;
  if (base === 0n) {
    if (bytes.length < 4 || !bytes.subarray(0, 4).equals(BINLOG_MAGIC)) throw malformed('no binlog magic', 0n);
    at = 4;
  }
  const out: BinlogGroup[] = [];
  let open = null as Omit<BinlogGroup, 'end'> | null;
  let openEnd = 0;
  const close = (): void => {
    if (open !== null) out.push({ ...open, end: base + BigInt(openEnd) });
    open = null;
  };
  while (at < bytes.length) {
    if (bytes.length - at < HEADER) throw malformed('a truncated event header', base + BigInt(at));
    const time = bytes.readUInt32LE(at);
    const type = bytes.readUInt8(at + 4);
    const size = bytes.readUInt32LE(at + 9);
    if (size < HEADER || at + size > bytes.length) {
      throw malformed(`an event of ${size} bytes with ${bytes.length - at} left`, base + BigInt(at));
    }
    if (type === GTID_EVENT) {
      close();
      if (size < HEADER + 13) throw malformed('a short GTID event', base + BigInt(at));
      const seq = bytes.readBigUInt64LE(at + HEADER);
      const domain = bytes.readUInt32LE(at + HEADER + 8);
      const serverId = bytes.readUInt32LE(at + 5);
      open = { gtid: `${domain}-${serverId}-${seq}`, domain, serverId, seq, start: base + BigInt(at), time };
      openEnd = at + size;
    } else if (open !== null && !NOT_IN_GROUP.has(type)) {
      open = { ...open, time: Math.max(open.time, time) };
      openEnd = at + size;
    }
    at += size;
  }
  close();
  return out;
}

/** The last group committed at or before `at` (event times are whole seconds), or null when none is. */
export function lastGroupAtOrBefore(groups: readonly BinlogGroup[], at: Date): BinlogGroup | null {
  let best: BinlogGroup | null = null;
  for (const g of groups) if (g.time * 1000 <= at.getTime()) best = g;
  return best;
}

/**
 * The binlog follower (pure, no I/O): takes the raw events of a COM_BINLOG_DUMP stream one by one and turns them
 * into archive segments — runs of whole event groups of one binlog file, byte for byte as the server's file has
 * them. It checks everything a gap or a duplicate would break, and throws instead of skipping:
 *
 *   - every real event must start where the previous one ended (its next_position − length = our position);
 *   - every event's CRC32 (when the file's format description says CRC32) matches;
 *   - a GTID's sequence number must be above the last one archived in its domain (a repeat = a duplicate);
 *   - the GTID list at the start of each file must equal the GTID position archived so far (a difference means
 *     transactions are missing or the server's history was rewritten: RESET MASTER, a restored server);
 *   - a new file is entered only at position 4.
 * Events the server makes up for the stream are not archived: the fake Rotate (timestamp 0 / ARTIFICIAL flag)
 * that names the file, the format description re-sent with next_position 0 when the dump starts inside a file,
 * heartbeats. The format description of an open file has the "in use" flag set; the archive has it cleared, as
 * the server's file has it once rotated (the flag is not covered by the event's CRC32).
 *
 * Group boundaries (where a segment may end): after a GTID group's last event — XID, XA PREPARE, a COMMIT /
 * ROLLBACK / XA COMMIT / XA ROLLBACK query, or the one query of a standalone group (DDL) — and after every event
 * outside a group (format description, GTID list, binlog checkpoint, Rotate, Stop).
 */
import { TidemarkError } from '../../core/errors.ts';
import {
  BINLOG_MAGIC,
  checksumAlgOf,
  clearInUse,
  crcMatches,
  EV,
  type EventHeader,
  FLAG_ARTIFICIAL,
  formatGtid,
  formatGtidPos,
  type Gtid,
  GTID_FL_STANDALONE,
  parseGtidEvent,
  parseGtidList,
  parseHeader,
  parseRotate,
  queryText,
} from './events.ts';

/** Where the archive stands: the next byte to archive and the GTID position there. */
export interface ArchivePoint {
  readonly file: string;
  /** File offset of the next byte; 4 for a file not yet started (its segment then starts at 0 with the magic). */
  readonly pos: bigint;
  readonly gtidPos: ReadonlyMap<number, Gtid>;
  /** The sequence number the next segment gets. */
  readonly nextSeq: bigint;
}

/** One segment ready to seal: its bytes are [startPos, endPos) of `file`. */
export interface Segment {
  readonly seq: bigint;
  readonly file: string;
  readonly startPos: bigint;
  readonly endPos: bigint;
  readonly bytes: readonly Buffer[];
  readonly size: number;
  readonly firstGtid: string | null;
  readonly lastGtid: string | null;
  /** Commit time (event header seconds) of the first/last group; the event time span without groups. */
  readonly firstCommit: Date;
  readonly lastCommit: Date;
  /** The GTID position at the end of the segment (gtid_binlog_pos text), null when no domain is known. */
  readonly gtidPos: string | null;
  /** When the first event of the segment arrived (wall clock, ms). */
  readonly openedAt: number;
  /** Arrival times (ms) of each group's last event: commit → sealed latency. */
  readonly groupArrivals: readonly number[];
  /** The segment ends its file (after a Rotate or Stop event). */
  readonly endsFile: boolean;
}

interface OpenGroup {
  readonly gtid: Gtid;
  readonly standalone: boolean;
  readonly bytes: Buffer[];
  size: number;
}

interface Pending {
  startPos: bigint;
  bytes: Buffer[];
  size: number;
  firstGtid: string | null;
  lastGtid: string | null;
  firstCommit: number | null;
  lastCommit: number | null;
  firstTime: number | null;
  lastTime: number | null;
  openedAt: number;
  groupArrivals: number[];
}

export function gapError(what: string, context: Record<string, string>): TidemarkError {
  return new TidemarkError(`binlog archive gap: ${what} — take a new full backup (the archive cannot continue)`, {
    code: 'BACKUP_LOG_GAP',
    retriable: false,
    context,
  });
}

function streamError(what: string, context: Record<string, string>): TidemarkError {
  return new TidemarkError(`binlog stream: ${what}`, { code: 'BACKUP_LOG_STREAM', retriable: false, context });
}

const GROUP_END_QUERY = /^\s*(COMMIT|ROLLBACK|XA\s+COMMIT|XA\s+ROLLBACK)\b/i;

export class LogFollower {
  #file: string;
  /** End of the last complete group (where a segment may end, where a dump restarts). */
  #pos: bigint;
  /** The next byte the stream must deliver (inside a group: after the group's last event so far). */
  #at: bigint;
  #gtidPos: Map<number, Gtid>;
  #nextSeq: bigint;
  #checksummed = false;
  #fileEnded = false;
  #group: OpenGroup | null = null;
  #pending: Pending | null = null;
  readonly #ready: Segment[] = [];
  readonly #warn: (msg: string, ctx: Record<string, string>) => void;

  constructor(start: ArchivePoint, warn: (msg: string, ctx: Record<string, string>) => void = () => undefined) {
    this.#file = start.file;
    this.#pos = start.pos;
    this.#at = start.pos;
    this.#gtidPos = new Map(start.gtidPos);
    this.#nextSeq = start.nextSeq;
    this.#warn = warn;
  }

  /** Where a dump must (re)start: the end of the last complete group received. */
  resumePoint(): { file: string; pos: bigint } {
    return { file: this.#file, pos: this.#pos };
  }

  /** Drops a group cut short by a lost connection: the dump restarts at resumePoint(). */
  connectionLost(): void {
    this.#group = null;
    this.#at = this.#pos;
  }

  /** Unsealed complete groups: when the open segment was opened (ms), or null when there is none. */
  openedAt(): number | null {
    return this.#pending?.openedAt ?? null;
  }

  pendingBytes(): number {
    return this.#pending?.size ?? 0;
  }

  /** Segments ready to seal, oldest first (taken out of the follower). */
  take(): Segment[] {
    return this.#ready.splice(0);
  }

  /** Closes the open segment at the last group boundary (the timer, a stop). */
  cut(): void {
    const p = this.#pending;
    if (p === null) return;
    this.#pending = null;
    const at = (s: number | null, fallback: number) => new Date(s === null || s === 0 ? fallback : s * 1000);
    this.#ready.push({
      seq: this.#nextSeq++,
      file: this.#file,
      startPos: p.startPos,
      endPos: this.#pos,
      bytes: p.bytes,
      size: p.size,
      firstGtid: p.firstGtid,
      lastGtid: p.lastGtid,
      firstCommit: at(p.firstCommit ?? p.firstTime, p.openedAt),
      lastCommit: at(p.lastCommit ?? p.lastTime, p.openedAt),
      gtidPos: this.#gtidPos.size === 0 ? null : formatGtidPos(this.#gtidPos),
      openedAt: p.openedAt,
      groupArrivals: p.groupArrivals,
      endsFile: this.#fileEnded,
    });
  }

  /** One raw event as the dump delivered it (without the packet's OK byte); `now` is its arrival (ms). */
  push(raw: Buffer, now: number): void {
    const h = parseHeader(raw);
    if (h.type === EV.HEARTBEAT) return;
    if (h.type === EV.ROTATE && (h.timestamp === 0 || (h.flags & FLAG_ARTIFICIAL) !== 0)) {
      this.#fakeRotate(raw, h);
      return;
    }
    if (h.nextPos === 0) {
      // Re-sent for the stream (the dump started inside the file): it tells the checksum algorithm only.
      if (h.type === EV.FORMAT_DESCRIPTION) this.#checksummed = checksumAlgOf(raw, h) === 1;
      return;
    }
    const start = BigInt(h.nextPos) - BigInt(h.length);
    if (start !== this.#at) {
      throw streamError(`event of type ${h.type} at '${this.#file}':${start}, the stream is at ${this.#at}`, {
        file: this.#file,
        position: String(start),
        expected: String(this.#at),
      });
    }
    this.#at = BigInt(h.nextPos);
    let ev = raw;
    if (h.type === EV.FORMAT_DESCRIPTION) {
      this.#checksummed = checksumAlgOf(raw, h) === 1;
      ev = clearInUse(raw);
    }
    if (this.#checksummed && !crcMatches(ev)) {
      throw streamError(`CRC32 mismatch in the event of type ${h.type} at '${this.#file}':${start}`, {
        file: this.#file,
        position: String(start),
      });
    }
    if (start === 4n && this.#pending === null && this.#group === null) {
      this.#pending = this.#open(0n, now);
      this.#pending.bytes.push(BINLOG_MAGIC);
      this.#pending.size += BINLOG_MAGIC.length;
    }
    this.#event(ev, h, now);
  }

  #open(startPos: bigint, now: number): Pending {
    return {
      startPos,
      bytes: [],
      size: 0,
      firstGtid: null,
      lastGtid: null,
      firstCommit: null,
      lastCommit: null,
      firstTime: null,
      lastTime: null,
      openedAt: now,
      groupArrivals: [],
    };
  }

  #fakeRotate(raw: Buffer, h: EventHeader): void {
    const rot = parseRotate(raw, h, crcMatches(raw));
    if (rot.file === this.#file) {
      if (rot.position !== this.#at) {
        throw streamError(`the server starts '${rot.file}' at ${rot.position}, the archive is at ${this.#at}`, {
          file: rot.file,
        });
      }
      return;
    }
    if (rot.position !== 4n) {
      throw streamError(`the server moved to '${rot.file}' at ${rot.position}, not at its start`, { file: rot.file });
    }
    if (this.#group !== null) {
      this.#warn('binlog file ended inside a transaction (a server crash?): its partial group is not archived', {
        file: this.#file,
      });
      this.#group = null;
    }
    if (!this.#fileEnded && this.#pos > 4n) {
      this.#warn('binlog file ends without a Rotate or Stop event seen here (a server crash, or a resume at its end)', {
        file: this.#file,
        next: rot.file,
      });
    }
    this.cut();
    this.#file = rot.file;
    this.#pos = 4n;
    this.#at = 4n;
    this.#fileEnded = false;
  }

  #event(ev: Buffer, h: EventHeader, now: number): void {
    const g = this.#group;
    if (h.type === EV.GTID) {
      if (g !== null) throw streamError(`GTID event inside the group of ${formatGtid(g.gtid)}`, { file: this.#file });
      const { gtid, flags2 } = parseGtidEvent(ev, h);
      const last = this.#gtidPos.get(gtid.domain);
      if (last !== undefined && gtid.seq <= last.seq) {
        throw gapError(`GTID ${formatGtid(gtid)} repeats or precedes ${formatGtid(last)} already archived`, {
          gtid: formatGtid(gtid),
          last: formatGtid(last),
          file: this.#file,
        });
      }
      this.#group = { gtid, standalone: (flags2 & GTID_FL_STANDALONE) !== 0, bytes: [ev], size: ev.length };
      return;
    }
    if (g !== null) {
      g.bytes.push(ev);
      g.size += ev.length;
      if (this.#endsGroup(ev, h, g)) {
        this.#gtidPos.set(g.gtid.domain, g.gtid);
        this.#group = null;
        this.#append(g.bytes, g.size, h, now, formatGtid(g.gtid));
      }
      return;
    }
    if (h.type === EV.GTID_LIST) this.#checkGtidList(parseGtidList(ev, h));
    if (h.type === EV.ROTATE || h.type === EV.STOP) this.#fileEnded = true;
    this.#append([ev], ev.length, h, now, null);
    if (this.#fileEnded) this.cut();
  }

  #endsGroup(ev: Buffer, h: EventHeader, g: OpenGroup): boolean {
    if (h.type === EV.XID || h.type === EV.XA_PREPARE) return true;
    if (h.type !== EV.QUERY) return false;
    return g.standalone || GROUP_END_QUERY.test(queryText(ev, h, this.#checksummed));
  }

  #append(bytes: Buffer[], size: number, h: EventHeader, now: number, gtid: string | null): void {
    const first = bytes[0] as Buffer;
    const start = BigInt(h.nextPos) - BigInt(size);
    if (start !== this.#pos) {
      throw streamError(`group at '${this.#file}':${start} does not follow ${this.#pos}`, { file: this.#file });
    }
    this.#pending ??= this.#open(this.#pos, now);
    const p = this.#pending;
    p.bytes.push(...bytes);
    p.size += size;
    this.#pos = BigInt(h.nextPos);
    const ts = first.readUInt32LE(0);
    if (ts !== 0) {
      p.firstTime ??= ts;
      p.lastTime = h.timestamp || ts;
    }
    if (gtid !== null) {
      p.firstGtid ??= gtid;
      p.lastGtid = gtid;
      p.firstCommit ??= h.timestamp;
      p.lastCommit = h.timestamp;
      p.groupArrivals.push(now);
    }
  }

  #checkGtidList(list: readonly Gtid[]): void {
    const listed = new Map(list.map((x) => [x.domain, x]));
    for (const [domain, ours] of this.#gtidPos) {
      const theirs = listed.get(domain);
      if (theirs === undefined || theirs.seq !== ours.seq || theirs.server !== ours.server) {
        throw gapError(
          `'${this.#file}' starts after GTID ${theirs === undefined ? `(none in domain ${domain})` : formatGtid(theirs)}, the archive ends at ${formatGtid(ours)}`,
          { file: this.#file, archived: formatGtid(ours), server: theirs === undefined ? '' : formatGtid(theirs) },
        );
      }
    }
    for (const x of list) this.#gtidPos.set(x.domain, x);
  }
}

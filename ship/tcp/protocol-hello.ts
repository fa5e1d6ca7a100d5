/**
 * The HELLO message of the ship protocol (protocol.ts): its shape and its body's encoding. Pure: no I/O.
 *
 *   u16 protocolVersion, str source, str site, str journalId,
 *   u16 count, count × (u32 epoch, u64 toLsn)          the source journal's truncation events (absent in version 1)
 *   [u8 1, str of, u64 atLsn, u32 epoch]               optional: the source journal's branch (a promoted mirror)
 *
 * The branch section follows the truncations only when the source journal has a branch, so a HELLO without one is
 * byte for byte what earlier versions sent (and decode); a HELLO with one is refused by a receiver that predates
 * it ("unexpected bytes after the hello body"), which could not follow a promoted standby anyway.
 */
import type { HelloBranch, TruncationMark } from '../frame.ts';
import { type BodyReader, BodyWriter, checkU64, protocolError, strBytes } from './protocol-bytes.ts';

export interface HelloMessage {
  readonly type: 'hello';
  readonly protocolVersion: number;
  /** The source (captured database) whose journal is shipped. */
  readonly source: string;
  /** The shipper's site; the receiver checks it against the client certificate. */
  readonly site: string;
  /** Identity of the source journal (a new journal at the same source must not continue an old copy). */
  readonly journalId: string;
  /**
   * The source journal's truncation events (journal/truncations.ts): a mirror holding frames above an event's
   * toLsn that it received before that epoch cuts them (journal/mirror.ts). Empty in a version 1 HELLO.
   */
  readonly truncations: readonly TruncationMark[];
  /**
   * Set when the source journal is a promoted mirror (identity.ts `branch`): a mirror of journal `branch.of` whose
   * head is at or below `branch.atLsn` adopts this journal instead of refusing it (ship/mirror.ts).
   */
  readonly branch?: HelloBranch;
}

/** Truncation events a HELLO carries at most (the journal keeps 64). */
export const MAX_HELLO_TRUNCATIONS = 1024;

const SECTION_BRANCH = 1;

/** The HELLO body, after `headerBytes` left free for the message header. */
export function writeHello(msg: HelloMessage, headerBytes: number): BodyWriter {
  const [src, site, jid] = [
    strBytes(msg.source, 'source'),
    strBytes(msg.site, 'site'),
    strBytes(msg.journalId, 'journalId'),
  ];
  const marks = msg.truncations;
  if (marks.length > MAX_HELLO_TRUNCATIONS)
    throw new RangeError(`ship protocol: more than ${MAX_HELLO_TRUNCATIONS} truncations`);
  const b = msg.branch;
  const of = b ? strBytes(b.of, 'branch.of') : null;
  const branchBytes = of ? 1 + 2 + of.length + 8 + 4 : 0;
  const w = new BodyWriter(
    headerBytes,
    2 + 6 + src.length + site.length + jid.length + 2 + 12 * marks.length + branchBytes,
  );
  w.u16(msg.protocolVersion);
  w.str(src);
  w.str(site);
  w.str(jid);
  w.u16(marks.length);
  for (const t of marks) {
    w.u32(t.epoch);
    w.u64(checkU64(t.toLsn, 'toLsn'));
  }
  if (b && of) {
    if (!Number.isInteger(b.epoch) || b.epoch < 0 || b.epoch > 0xffffffff)
      throw new RangeError(`ship protocol: branch epoch ${b.epoch} is not a u32`);
    w.u8(SECTION_BRANCH);
    w.str(of);
    w.u64(checkU64(b.atLsn, 'branch.atLsn'));
    w.u32(b.epoch);
  }
  return w;
}

/** Reads a HELLO body (the caller checks that nothing follows it). */
export function readHello(r: BodyReader, offset: number): HelloMessage {
  const head = {
    protocolVersion: r.u16('protocolVersion'),
    source: r.str('source'),
    site: r.str('site'),
    journalId: r.str('journalId'),
  };
  const truncations: TruncationMark[] = [];
  const count = r.left > 0 ? r.u16('truncation count') : 0;
  for (let i = 0; i < count; i++) truncations.push({ epoch: r.u32('epoch'), toLsn: r.u64('toLsn') });
  if (r.left === 0) return { type: 'hello', ...head, truncations };
  const section = r.u8('HELLO section');
  if (section !== SECTION_BRANCH) throw protocolError(`unknown HELLO section ${section}`, offset);
  const branch: HelloBranch = { of: r.str('branch.of'), atLsn: r.u64('branch.atLsn'), epoch: r.u32('branch.epoch') };
  return { type: 'hello', ...head, truncations, branch };
}

import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { EV, HEADER_LEN, parseGtidEvent, parseHeader } from './events.ts';
import { FIXTURE, FIXTURE_FILE, fixtureEvents } from './fixtures/fixture.ts';
import { type ArchivePoint, LogFollower, type Segment } from './follower.ts';

const events = fixtureEvents();
const start: ArchivePoint = { file: FIXTURE_FILE, pos: 4n, gtidPos: new Map(), nextSeq: 1n };

/** An event with a correct header and CRC32 (for the made-up cases). */
function event(type: number, nextPos: number, body: Buffer, o: { ts?: number; flags?: number } = {}): Buffer {
  const len = HEADER_LEN + body.length + 4;
  const b = Buffer.alloc(len);
  b.writeUInt32LE(o.ts ?? 1_800_000_000, 0);
  b.writeUInt8(type, 4);
  b.writeUInt32LE(3810, 5);
  b.writeUInt32LE(len, 9);
  b.writeUInt32LE(nextPos, 13);
  b.writeUInt16LE(o.flags ?? 0, 17);
  body.copy(b, HEADER_LEN);
  b.writeUInt32LE(crc32(b.subarray(0, len - 4)), len - 4);
  return b;
}

function fakeRotate(file: string, pos: bigint): Buffer {
  const body = Buffer.concat([Buffer.alloc(8), Buffer.from(file, 'latin1')]);
  body.writeBigUInt64LE(pos, 0);
  return event(EV.ROTATE, 0, body, { ts: 0, flags: 0x20 });
}

const concat = (segs: readonly Segment[]) => Buffer.concat(segs.flatMap((s) => [...s.bytes]));

describe('LogFollower on a real binlog file', () => {
  it('archives the file byte for byte, one segment when cut only at its rotate', () => {
    const f = new LogFollower(start);
    f.push(fakeRotate(FIXTURE_FILE, 4n), 0);
    for (const ev of events) f.push(ev, 1);
    const segs = f.take();
    expect(segs).toHaveLength(1);
    const s = segs[0] as Segment;
    expect(concat(segs)).toEqual(FIXTURE);
    expect([s.seq, s.startPos, s.endPos, s.endsFile]).toEqual([1n, 0n, BigInt(FIXTURE.length), true]);
    expect([s.firstGtid, s.lastGtid, s.gtidPos]).toEqual(['0-3810-1', '0-3810-24', '0-3810-24']);
    expect(s.firstCommit.getTime()).toBe(parseHeader(events[3] as Buffer).timestamp * 1000);
  });

  it('cuts only at group boundaries: every segment holds whole groups, each GTID once', () => {
    const f = new LogFollower(start);
    for (const ev of events) {
      f.push(ev, 1);
      f.cut(); // as eagerly as possible: a cut inside a group must wait for the group's end
    }
    const segs = f.take();
    expect(concat(segs)).toEqual(FIXTURE);
    expect(segs.map((s) => s.seq)).toEqual(segs.map((_, i) => BigInt(i + 1)));
    for (let i = 1; i < segs.length; i++) expect(segs[i]?.startPos).toBe(segs[i - 1]?.endPos);
    const withGroups = segs.filter((s) => s.firstGtid !== null);
    expect(withGroups).toHaveLength(24);
    for (const s of withGroups) {
      expect(s.firstGtid).toBe(s.lastGtid);
      const first = s.bytes[0] as Buffer;
      const h = parseHeader(first);
      expect(h.type).toBe(EV.GTID);
      expect(`0-3810-${parseGtidEvent(first, h).gtid.seq}`).toBe(s.firstGtid);
    }
    // The XA transaction's first part ends at XA PREPARE; the MyISAM one at its COMMIT query.
    const types = (s: Segment) => s.bytes.map((b) => parseHeader(b).type);
    expect(withGroups.some((s) => types(s).at(-1) === EV.XA_PREPARE)).toBe(true);
    expect(withGroups.filter((s) => types(s).at(-1) === EV.XID).length).toBeGreaterThan(5);
  });

  it('resumes inside a file: skips the re-sent format description, continues the sequence', () => {
    const whole = new LogFollower(start);
    for (const ev of events.slice(0, 12)) whole.push(ev, 1);
    whole.cut();
    const first = whole.take();
    const at = whole.resumePoint();
    const f = new LogFollower({ file: at.file, pos: at.pos, gtidPos: new Map(), nextSeq: 2n });
    f.push(fakeRotate(FIXTURE_FILE, at.pos), 2);
    const fde = Buffer.from(events[0] as Buffer);
    fde.writeUInt32LE(0, 13); // next position 0: how the server re-sends it; its CRC no longer matches
    f.push(fde, 2);
    const from = events.findIndex((e) => BigInt(parseHeader(e).nextPos - e.length) === at.pos);
    expect(from).toBeGreaterThan(5);
    for (const ev of events.slice(from)) f.push(ev, 2);
    const rest = f.take();
    expect(rest[0]?.seq).toBe(2n);
    expect(concat([...first, ...rest])).toEqual(FIXTURE);
  });

  it('a dropped connection loses only the partial group; the resume point is the last boundary', () => {
    const f = new LogFollower(start);
    const gtidAt = events.findIndex((e, i) => i > 5 && parseHeader(e).type === EV.GTID);
    for (const ev of events.slice(0, gtidAt + 1)) f.push(ev, 1);
    const before = f.resumePoint();
    expect(before.pos).toBe(BigInt(parseHeader(events[gtidAt] as Buffer).nextPos - (events[gtidAt] as Buffer).length));
    f.connectionLost();
    f.push(fakeRotate(FIXTURE_FILE, before.pos), 2);
    for (const ev of events.slice(gtidAt)) f.push(ev, 2);
    expect(concat(f.take())).toEqual(FIXTURE);
  });

  it('refuses an event that does not start where the archive is', () => {
    const f = new LogFollower(start);
    f.push(events[0] as Buffer, 1);
    expect(() => f.push(events[2] as Buffer, 1)).toThrow(
      expect.objectContaining({ code: 'BACKUP_LOG_STREAM', message: expect.stringMatching(/the stream is at 256/) }),
    );
  });

  it('refuses a CRC32 mismatch', () => {
    const f = new LogFollower(start);
    f.push(events[0] as Buffer, 1);
    const bad = Buffer.from(events[1] as Buffer);
    bad[HEADER_LEN] = (bad[HEADER_LEN] as number) ^ 0x40;
    expect(() => f.push(bad, 1)).toThrow(expect.objectContaining({ code: 'BACKUP_LOG_STREAM' }));
  });

  it('a GTID that repeats one already archived is a gap (duplicate), not skipped', () => {
    const gtidPos = new Map([[0, { domain: 0, server: 3810, seq: 30n }]]);
    const pos = BigInt(parseHeader(events[2] as Buffer).nextPos);
    const f = new LogFollower({ file: FIXTURE_FILE, pos, gtidPos, nextSeq: 5n });
    expect(() => f.push(events[3] as Buffer, 1)).toThrow(
      expect.objectContaining({ code: 'BACKUP_LOG_GAP', message: expect.stringMatching(/0-3810-1 repeats/) }),
    );
  });

  it('a file whose GTID list does not continue the archive is a gap', () => {
    const f = new LogFollower({
      file: 'mysql-bin.000000',
      pos: 400n,
      gtidPos: new Map([[0, { domain: 0, server: 3810, seq: 7n }]]),
      nextSeq: 9n,
    });
    f.push(fakeRotate(FIXTURE_FILE, 4n), 1);
    f.push(events[0] as Buffer, 1);
    expect(() => f.push(events[1] as Buffer, 1)).toThrow(
      expect.objectContaining({ code: 'BACKUP_LOG_GAP', message: expect.stringMatching(/archive ends at 0-3810-7/) }),
    );
  });

  it('a fake rotate into the current file at another position is refused', () => {
    const f = new LogFollower(start);
    expect(() => f.push(fakeRotate(FIXTURE_FILE, 100n), 1)).toThrow(
      expect.objectContaining({ code: 'BACKUP_LOG_STREAM' }),
    );
    const g = new LogFollower(start);
    expect(() => g.push(fakeRotate('mysql-bin.000009', 120n), 1)).toThrow(/not at its start/);
  });

  it('moves to the next file after a rotate, warning when a file ends without one', () => {
    const warnings: string[] = [];
    const f = new LogFollower(start, (m) => warnings.push(m));
    for (const ev of events.slice(0, 5)) f.push(ev, 1);
    f.push(fakeRotate('mysql-bin.000002', 4n), 2);
    expect(warnings).toHaveLength(1);
    const segs = f.take();
    expect(segs.map((s) => [s.file, s.endsFile])).toEqual([[FIXTURE_FILE, false]]);
    expect(f.resumePoint()).toEqual({ file: 'mysql-bin.000002', pos: 4n });
  });
});

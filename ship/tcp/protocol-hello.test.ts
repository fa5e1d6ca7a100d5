import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import { concat, decodeAll, decodeUntilError } from '../../test/fixtures/wire.ts';
import { encodeMessage, type HelloMessage, MESSAGE_HEADER_BYTES } from './protocol.ts';

/** A copy of an encoded message with its body replaced (length and CRCs fixed). */
function withBody(msg: Uint8Array, body: Uint8Array): Uint8Array {
  const out = concat([msg.subarray(0, MESSAGE_HEADER_BYTES), body]);
  const v = new DataView(out.buffer);
  v.setUint32(4, body.length, true);
  const hcrc = crc32(out.subarray(0, 8));
  v.setUint32(8, hcrc, true);
  v.setUint32(12, crc32(out.subarray(MESSAGE_HEADER_BYTES), hcrc), true);
  return out;
}

describe("ship protocol: the HELLO branch (a promoted mirror's journal)", () => {
  it('adds the branch after the truncations only when there is one: a HELLO without it is the version 2 layout', () => {
    const base = {
      type: 'hello',
      protocolVersion: 2,
      source: 's',
      site: 'dc1',
      journalId: 'j',
      truncations: [{ epoch: 1, toLsn: 5n }],
    } as const;
    const plain = encodeMessage(base);
    // u16 version, str 's', str 'dc1', str 'j', u16 count, 1 × (u32 + u64): nothing after the truncations.
    expect(plain.length - MESSAGE_HEADER_BYTES).toBe(2 + 3 + 5 + 3 + 2 + 12);
    const [decoded] = decodeAll([plain]);
    expect(decoded).toEqual(base);
    expect('branch' in (decoded as object)).toBe(false);
    const withBranch = encodeMessage({ ...base, branch: { of: 'A', atLsn: 812n, epoch: 4 } });
    expect(withBranch.subarray(0, plain.length).subarray(MESSAGE_HEADER_BYTES)).toEqual(
      plain.subarray(MESSAGE_HEADER_BYTES),
    );
    const tail = new DataView(withBranch.buffer, plain.length);
    expect(tail.getUint8(0)).toBe(1); // section: branch
    expect(tail.getUint16(1, true)).toBe(1); // str of
    expect(withBranch[plain.length + 3]).toBe('A'.charCodeAt(0));
    expect(tail.getBigUint64(4, true)).toBe(812n);
    expect(tail.getUint32(12, true)).toBe(4);
    expect(withBranch.length).toBe(plain.length + 16);
    expect(decodeAll([withBranch])).toEqual([{ ...base, branch: { of: 'A', atLsn: 812n, epoch: 4 } }]);
  });

  it('refuses a HELLO with an unknown section or a cut-short branch', () => {
    const hello = (atLsn: bigint): HelloMessage => ({
      type: 'hello',
      protocolVersion: 2,
      source: 's',
      site: 'dc1',
      journalId: 'j',
      truncations: [],
      branch: { of: 'A', atLsn, epoch: 0 },
    });
    const withBranch = encodeMessage(hello(1n));
    const body = withBranch.slice(MESSAGE_HEADER_BYTES);
    const sectionAt = 2 + 3 + 5 + 3 + 2;
    const unknown = body.slice();
    unknown[sectionAt] = 2;
    const a = decodeUntilError(withBody(withBranch, unknown));
    expect(a.error).toBeInstanceOf(TidemarkError);
    expect(String(a.error)).toMatch(/unknown HELLO section 2/);
    const short = decodeUntilError(withBody(withBranch, body.subarray(0, body.length - 2)));
    expect(String(short.error)).toMatch(/body ends inside branch\.epoch/);
    expect(() => encodeMessage(hello(-1n))).toThrow(RangeError);
  });
});

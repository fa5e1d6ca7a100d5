import type { AnyBinlogEvent } from '@vlasky/zongji';
import { describe, expect, it } from 'vitest';
import { EventDecoder } from './events.ts';

const decoder = new EventDecoder({ includesTable: () => true, headerBytes: () => 23 });

const gtidEvent = (over: Record<string, unknown>) =>
  ({
    getEventName: () => 'mariadbgtid',
    gtid: '0-1-14',
    standalone: false,
    preparedXa: false,
    completedXa: false,
    nextPosition: 431,
    ...over,
  }) as unknown as AnyBinlogEvent;

describe('EventDecoder: XA and undecodable events', () => {
  it('tells XA prepare and complete groups apart and renders their XID', () => {
    expect(
      decoder.decode(
        gtidEvent({ preparedXa: true, xidGtrid: Buffer.from('x1'), xidBqual: Buffer.alloc(0), xidFormatId: 1 }),
      ),
    ).toEqual({
      type: 'gtid',
      gtid: '0-1-14',
      standalone: false,
      xa: 'prepare',
      xid: "'x1'",
      endOffset: 431n,
    });
    expect(
      decoder.decode(
        gtidEvent({
          completedXa: true,
          standalone: true,
          xidGtrid: Buffer.from([0, 255]),
          xidBqual: Buffer.from('b'),
          xidFormatId: 7,
        }),
      ),
    ).toMatchObject({ xa: 'complete', xid: "X'00ff','b',7", standalone: true });
    expect(decoder.decode(gtidEvent({}))).not.toHaveProperty('xid');
  });

  it('locates an event zongji cannot decode from its end offset, body size and header length', () => {
    // SHOW BINLOG EVENTS: Execute_load_query at 460, ending at 683; zongji reports a body of 200 bytes.
    const ev = { getEventName: () => 'unknown', size: 200, nextPosition: 683 } as unknown as AnyBinlogEvent;
    expect(decoder.decode(ev)).toEqual({ type: 'opaque', startOffset: 460n, endOffset: 683n });
  });
});

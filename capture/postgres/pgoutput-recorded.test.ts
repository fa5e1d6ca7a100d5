import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import { decodePgoutput, PgoutputDecoder } from './pgoutput.ts';

/**
 * Real pgoutput bytes recorded from PostgreSQL 15 by test/it/pg-stream.it.test.ts (TIDEMARK_RECORD_PGOUTPUT=1),
 * by message kind, in stream order (payloads over 8 KiB, i.e. the 1 MiB TOAST rows, left out).
 */
const recorded = JSON.parse(readFileSync(join(import.meta.dirname, 'pgoutput.recorded.json'), 'utf8')) as {
  messages: Record<string, string[]>;
};
const bytes = (kind: string) => (recorded.messages[kind] ?? []).map((h) => Buffer.from(h, 'hex'));

describe('pgoutput on bytes recorded from PostgreSQL 15', () => {
  it('holds every message kind the decoder knows', () => {
    expect(Object.keys(recorded.messages).sort()).toEqual(['B', 'C', 'D', 'I', 'M', 'O', 'R', 'T', 'U', 'Y']);
  });

  it.each(['B', 'C', 'O', 'Y', 'R', 'I', 'U', 'D', 'T', 'M'])(
    'decodes every recorded %s and refuses it cut short',
    (kind) => {
      for (const b of bytes(kind)) {
        const m = decodePgoutput(b);
        expect(m.tag).toBe(
          {
            B: 'begin',
            C: 'commit',
            O: 'origin',
            Y: 'type',
            R: 'relation',
            I: 'insert',
            U: 'update',
            D: 'delete',
            T: 'truncate',
            M: 'message',
          }[kind],
        );
        for (const len of [1, Math.floor(b.length / 2), b.length - 1]) {
          if (len >= b.length) continue;
          let err: unknown;
          try {
            decodePgoutput(b.subarray(0, len));
          } catch (e) {
            err = e;
          }
          expect(err).toBeInstanceOf(TidemarkError);
          expect((err as TidemarkError).code).toBe('PG_PROTOCOL');
        }
      }
    },
  );

  it('decodes the recorded content: the enum type, the table, the origin, the logical message, commit LSNs', () => {
    const type = decodePgoutput(bytes('Y')[0] ?? Buffer.alloc(0));
    expect(type).toMatchObject({ tag: 'type', namespace: 'app', name: 'mood' });
    const rel = decodePgoutput(bytes('R')[0] ?? Buffer.alloc(0));
    expect(rel).toMatchObject({ tag: 'relation', namespace: 'app', name: 't', replicaIdentity: 'f' });
    if (rel.tag !== 'relation') throw new Error('unreachable');
    // REPLICA IDENTITY FULL: the server flags every column as part of the identity.
    expect(rel.columns).toHaveLength(13);
    expect(rel.columns.every((c) => c.isKey)).toBe(true);
    expect(decodePgoutput(bytes('O')[0] ?? Buffer.alloc(0))).toMatchObject({ tag: 'origin', name: 'tm_origin' });
    const msg = decodePgoutput(bytes('M')[0] ?? Buffer.alloc(0));
    if (msg.tag !== 'message') throw new Error('unreachable');
    expect([msg.transactional, msg.prefix, Buffer.from(msg.content).toString()]).toEqual([
      true,
      'tidemark.test',
      'hello ü',
    ]);
    for (const c of bytes('C')) {
      const m = decodePgoutput(c);
      if (m.tag !== 'commit') throw new Error('unreachable');
      expect(m.endLsn).toBeGreaterThan(m.commitLsn);
    }
    expect(decodePgoutput(bytes('T')[0] ?? Buffer.alloc(0))).toMatchObject({
      tag: 'truncate',
      relationOids: [rel.relationOid],
    });
  });

  it('types the recorded rows with the recorded Relation message', () => {
    const d = new PgoutputDecoder();
    for (const r of bytes('R')) d.decode(r);
    const small = [...bytes('I'), ...bytes('D')].map((b) => d.decode(b));
    expect(small.length).toBeGreaterThan(0);
    for (const m of small) {
      const tuple = m.tag === 'insert' ? m.newTuple : m.tag === 'delete' ? m.old.tuple : [];
      expect(tuple.length).toBe(13);
      expect(tuple[0]).toMatchObject({ kind: 'text', typeOid: 23 });
    }
  });
});

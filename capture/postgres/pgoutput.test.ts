import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import * as b from '../../test/fixtures/pgoutput-bytes.ts';
import { decodePgoutput, PgoutputDecoder } from './pgoutput.ts';

/** LSNs and times above 2^53: only exact bigint decoding gets them right. */
const LSN = 0x0123_4567_89ab_cdefn;
const TIME = 0x0002_d1a9_4a20_0123n;
const TEXT_OID = 25;
const INT4_OID = 23;
const JSONB_OID = 3802;

const cols: b.ColumnSpec[] = [
  { name: 'id', typeOid: INT4_OID, typeMod: -1, key: true },
  { name: 'body', typeOid: TEXT_OID, typeMod: -1 },
  { name: 'doc', typeOid: JSONB_OID, typeMod: -1 },
];

/** Every kind, built from the protocol documentation, with what it must decode to. */
const CASES: [string, Buffer, unknown][] = [
  ['Begin', b.begin(LSN, TIME, 0xfffffffe), { tag: 'begin', finalLsn: LSN, commitTime: TIME, xid: 0xfffffffe }],
  [
    'Commit',
    b.commit(LSN, LSN + 24n, TIME),
    { tag: 'commit', flags: 0, commitLsn: LSN, endLsn: LSN + 24n, commitTime: TIME },
  ],
  ['Origin', b.origin(LSN, 'pg_16384'), { tag: 'origin', commitLsn: LSN, name: 'pg_16384' }],
  ['Type', b.type(16500, 'app', 'mood'), { tag: 'type', typeOid: 16500, namespace: 'app', name: 'mood' }],
  [
    'Relation',
    b.relation(16390, 'app', 'Ünïcode "t"', 'f', cols),
    {
      tag: 'relation',
      relationOid: 16390,
      namespace: 'app',
      name: 'Ünïcode "t"',
      replicaIdentity: 'f',
      columns: [
        { name: 'id', typeOid: INT4_OID, typeMod: -1, isKey: true },
        { name: 'body', typeOid: TEXT_OID, typeMod: -1, isKey: false },
        { name: 'doc', typeOid: JSONB_OID, typeMod: -1, isKey: false },
      ],
    },
  ],
  [
    'Insert',
    b.insert(16390, ['1', null, '{"a": "ü"}']),
    {
      tag: 'insert',
      relationOid: 16390,
      newTuple: [{ kind: 'text', text: '1' }, { kind: 'null' }, { kind: 'text', text: '{"a": "ü"}' }],
    },
  ],
  [
    'Update with old row',
    b.update(16390, { kind: 'O', cells: ['1', 'unchanged', ''] }, ['1', 'unchanged', '[]']),
    {
      tag: 'update',
      relationOid: 16390,
      old: { kind: 'old', tuple: [{ kind: 'text', text: '1' }, { kind: 'unchanged' }, { kind: 'text', text: '' }] },
      newTuple: [{ kind: 'text', text: '1' }, { kind: 'unchanged' }, { kind: 'text', text: '[]' }],
    },
  ],
  [
    'Update with key',
    b.update(16390, { kind: 'K', cells: ['1', null, null] }, ['2', 'x', null]),
    {
      tag: 'update',
      relationOid: 16390,
      old: { kind: 'key', tuple: [{ kind: 'text', text: '1' }, { kind: 'null' }, { kind: 'null' }] },
      newTuple: [{ kind: 'text', text: '2' }, { kind: 'text', text: 'x' }, { kind: 'null' }],
    },
  ],
  [
    'Update without old tuple',
    b.update(16390, undefined, ['2', 'y', null]),
    {
      tag: 'update',
      relationOid: 16390,
      newTuple: [{ kind: 'text', text: '2' }, { kind: 'text', text: 'y' }, { kind: 'null' }],
    },
  ],
  [
    'Delete',
    b.del(16390, 'O', ['2', 'y', null]),
    {
      tag: 'delete',
      relationOid: 16390,
      old: { kind: 'old', tuple: [{ kind: 'text', text: '2' }, { kind: 'text', text: 'y' }, { kind: 'null' }] },
    },
  ],
  [
    'Truncate',
    b.truncate(3, [16390, 4294967295]),
    { tag: 'truncate', cascade: true, restartIdentity: true, relationOids: [16390, 4294967295] },
  ],
  [
    'Message',
    b.message(true, LSN, 'tidemark.ddl', Buffer.from('ALTER TABLE "t" ADD c int')),
    {
      tag: 'message',
      transactional: true,
      lsn: LSN,
      prefix: 'tidemark.ddl',
      content: new Uint8Array(Buffer.from('ALTER TABLE "t" ADD c int')),
    },
  ],
];

function protocolError(fn: () => unknown): TidemarkError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).code).toBe('PG_PROTOCOL');
    expect((err as TidemarkError).retriable).toBe(false);
    return err as TidemarkError;
  }
  throw new Error('expected a PG_PROTOCOL error');
}

describe('decodePgoutput', () => {
  it.each(CASES)('decodes %s', (_name, bytes, expected) => {
    const got = decodePgoutput(bytes);
    if (got.tag === 'message') expect({ ...got, content: new Uint8Array(got.content) }).toEqual(expected);
    else expect(got).toEqual(expected);
  });

  it.each(CASES)('refuses %s cut short at every length, naming the kind and offset', (name, bytes) => {
    const kindName = name.split(' ')[0];
    for (let len = 1; len < bytes.length; len++) {
      const e = protocolError(() => decodePgoutput(bytes.subarray(0, len)));
      expect(e.message).toMatch(
        new RegExp(`^pgoutput ${kindName} \\('${bytes.toString('latin1', 0, 1)}'\\) message: .* at offset \\d+$`),
      );
      expect(Number(e.context['offset'])).toBeLessThanOrEqual(len);
    }
  });

  it.each(CASES)('refuses %s with a trailing byte', (_name, bytes) => {
    const e = protocolError(() => decodePgoutput(Buffer.concat([bytes, Buffer.from([0])])));
    expect(e.message).toContain(`1 unexpected trailing bytes at offset ${bytes.length}`);
  });

  it('decodes from a subarray at an odd byte offset (a view into a larger CopyData chunk)', () => {
    const bytes = b.commit(LSN, LSN + 1n, TIME);
    const big = Buffer.concat([Buffer.from([9, 9, 9]), bytes]);
    expect(decodePgoutput(big.subarray(3))).toEqual({
      tag: 'commit',
      flags: 0,
      commitLsn: LSN,
      endLsn: LSN + 1n,
      commitTime: TIME,
    });
  });

  it('refuses an empty payload, an unknown kind, an unknown cell kind, binary cells and invalid UTF-8', () => {
    expect(protocolError(() => decodePgoutput(new Uint8Array())).message).toContain('empty payload at offset 0');
    expect(protocolError(() => decodePgoutput(Buffer.from('Zxyz'))).message).toBe(
      "pgoutput unknown ('Z') message: unknown message kind (byte 90) at offset 0",
    );
    const bad = new b.Bytes().char('I').u32(1).char('N').i16(1).char('q').build();
    expect(protocolError(() => decodePgoutput(bad)).message).toContain("column 0 has unknown kind 'q' at offset 8");
    const bin = new b.Bytes().char('I').u32(1).char('N').i16(1).char('b').i32(0).build();
    expect(protocolError(() => decodePgoutput(bin)).message).toContain("column 0 is binary ('b')");
    const latin = new b.Bytes().char('I').u32(1).char('N').i16(1).char('t').i32(1).u8(0xff).build();
    expect(protocolError(() => decodePgoutput(latin)).message).toContain(
      'column 0 text is not valid UTF-8 at offset 13',
    );
    const noN = new b.Bytes().char('I').u32(1).char('X').i16(0).build();
    expect(protocolError(() => decodePgoutput(noN)).message).toContain("expected 'N', found 'X' at offset 5");
    const neg = new b.Bytes().char('I').u32(1).char('N').i16(1).char('t').i32(-5).build();
    expect(protocolError(() => decodePgoutput(neg)).message).toContain('negative length -5');
    const ident = b.relation(1, 's', 't', 'x', []);
    expect(protocolError(() => decodePgoutput(ident)).message).toContain("unknown replica identity 'x' at offset 9");
  });
});

describe('PgoutputDecoder', () => {
  it('types every cell with its column OID from the last Relation message, keeping the unchanged marker', () => {
    const d = new PgoutputDecoder();
    d.decode(b.relation(16390, 'app', 't', 'f', cols));
    const u = d.decode(b.update(16390, { kind: 'O', cells: ['1', 'unchanged', null] }, ['1', 'unchanged', '{}']));
    expect(u).toEqual({
      tag: 'update',
      relationOid: 16390,
      old: {
        kind: 'old',
        tuple: [
          { kind: 'text', text: '1', typeOid: INT4_OID },
          { kind: 'unchanged', typeOid: TEXT_OID },
          { kind: 'null', typeOid: JSONB_OID },
        ],
      },
      newTuple: [
        { kind: 'text', text: '1', typeOid: INT4_OID },
        { kind: 'unchanged', typeOid: TEXT_OID },
        { kind: 'text', text: '{}', typeOid: JSONB_OID },
      ],
    });
    // A later Relation message (ALTER TABLE) replaces the shape.
    d.decode(b.relation(16390, 'app', 't', 'd', [{ name: 'id', typeOid: 20, typeMod: -1, key: true }]));
    expect(d.decode(b.insert(16390, ['7']))).toEqual({
      tag: 'insert',
      relationOid: 16390,
      newTuple: [{ kind: 'text', text: '7', typeOid: 20 }],
    });
    expect(d.relation(16390)?.replicaIdentity).toBe('d');
  });

  it('refuses a change for an undescribed relation or with the wrong column count', () => {
    const d = new PgoutputDecoder();
    expect(protocolError(() => d.decode(b.del(5, 'K', ['1']))).message).toContain(
      'relation 5 was never described by a Relation message',
    );
    d.decode(b.relation(5, 's', 't', 'd', cols));
    expect(protocolError(() => d.decode(b.insert(5, ['1']))).message).toContain(
      '1 columns for s.t, whose Relation message has 3',
    );
  });
});

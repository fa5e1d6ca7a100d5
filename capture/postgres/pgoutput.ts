/**
 * A pure decoder of PostgreSQL's pgoutput logical replication protocol, version 1 (with `messages 'true'`):
 * the payload of one XLogData message in, one typed message out. No I/O (capture/postgres/walstream.ts reads the
 * replication connection). Grammar (PostgreSQL 15 docs, "Logical Replication Message Formats"; Int64 and LSNs
 * big-endian, strings NUL-terminated UTF-8):
 *
 *   Begin    'B' Int64 finalLsn, Int64 commitTime, Int32 xid
 *   Commit   'C' Int8 flags(0), Int64 commitLsn, Int64 endLsn, Int64 commitTime
 *   Origin   'O' Int64 commitLsn (on the origin), String name
 *   Type     'Y' Int32 typeOid, String namespace, String name
 *   Relation 'R' Int32 relationOid, String namespace, String name, Int8 replicaIdentity, Int16 ncols,
 *                ncols × (Int8 flags (1 = key), String name, Int32 typeOid, Int32 typeMod)
 *   Insert   'I' Int32 relationOid, 'N' TupleData
 *   Update   'U' Int32 relationOid, ['K' | 'O' TupleData], 'N' TupleData
 *   Delete   'D' Int32 relationOid, 'K' | 'O' TupleData
 *   Truncate 'T' Int32 nrels, Int8 options (1 CASCADE, 2 RESTART IDENTITY), nrels × Int32 relationOid
 *   Message  'M' Int8 flags (1 = transactional), Int64 lsn, String prefix, Int32 length, Byte[length] content
 *   TupleData  Int16 ncols, ncols × ('n' null | 'u' unchanged TOAST | 't' Int32 length, Byte[length] text)
 *
 * Times are microseconds since 2000-01-01 (bigint). Values stay as the server's text: `decodePgoutput` gives
 * cells, `PgoutputDecoder` remembers Relation messages and gives each cell its column's type OID. An unchanged
 * TOAST value is the typed marker { kind: 'unchanged' }, never NULL: an applier must keep the target's value.
 * Anything malformed (short, an unknown kind, trailing bytes, invalid UTF-8, a change for a relation never
 * described) is a TidemarkError PG_PROTOCOL naming the message kind and the byte offset.
 */
import { TidemarkError } from '../../core/errors.ts';
import type {
  OldTupleKind,
  PgCell,
  PgColumn,
  PgoutputMessage,
  PgValue,
  RelationMessage,
  ReplicaIdentity,
} from './pgoutput-messages.ts';

const KIND_NAMES: Readonly<Record<string, string>> = {
  B: 'Begin',
  C: 'Commit',
  O: 'Origin',
  Y: 'Type',
  R: 'Relation',
  I: 'Insert',
  U: 'Update',
  D: 'Delete',
  T: 'Truncate',
  M: 'Message',
};

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The column types a change's cells get (PgoutputDecoder): its relation's, and the error for a count mismatch. */
interface CellTypes {
  readonly oids: readonly number[];
  wrongCount(n: number): never;
}
type TypesOf = (relationOid: number) => CellTypes;

/** A cursor over one message that names the message kind and offset in every error. */
class Reader {
  private off = 1;
  private readonly view: DataView;
  private readonly buf: Uint8Array;
  /** The same bytes as a Buffer (no copy): its latin1Slice makes a string without a view per cell. */
  private readonly bytesBuf: Buffer & { latin1Slice(start: number, end: number): string };
  private readonly kind: string;

  constructor(buf: Uint8Array, kind: string) {
    this.buf = buf;
    this.kind = kind;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.bytesBuf = (Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)) as Buffer & {
      latin1Slice(start: number, end: number): string;
    };
  }

  fail(what: string, at = this.off): never {
    const name = KIND_NAMES[this.kind] ?? 'unknown';
    throw new TidemarkError(`pgoutput ${name} ('${this.kind}') message: ${what} at offset ${at}`, {
      code: 'PG_PROTOCOL',
      context: { kind: this.kind, offset: at, length: this.buf.length },
    });
  }

  private need(n: number, what: string): number {
    const at = this.off;
    if (at + n > this.buf.length) this.fail(`${what} needs ${n} bytes, ${this.buf.length - at} left`, at);
    this.off += n;
    return at;
  }

  u8(what: string): number {
    return this.buf[this.need(1, what)] as number;
  }
  char(what: string): string {
    return String.fromCharCode(this.u8(what));
  }
  i16(what: string): number {
    return this.view.getInt16(this.need(2, what));
  }
  i32(what: string): number {
    return this.view.getInt32(this.need(4, what));
  }
  u32(what: string): number {
    return this.view.getUint32(this.need(4, what));
  }
  u64(what: string): bigint {
    return this.view.getBigUint64(this.need(8, what));
  }
  i64(what: string): bigint {
    return this.view.getBigInt64(this.need(8, what));
  }
  bytes(n: number, what: string): Uint8Array {
    if (n < 0) this.fail(`${what} has a negative length ${n}`);
    const at = this.need(n, what);
    return this.buf.subarray(at, at + n);
  }
  text(bytes: Uint8Array, what: string, at: number): string {
    try {
      return utf8.decode(bytes);
    } catch {
      return this.fail(`${what} is not valid UTF-8`, at);
    }
  }
  cstring(what: string): string {
    const at = this.off;
    const end = this.buf.indexOf(0, at);
    if (end < 0) this.fail(`${what} has no terminating NUL`, at);
    this.off = end + 1;
    return this.text(this.buf.subarray(at, end), what, at);
  }
  end(): void {
    if (this.off !== this.buf.length) this.fail(`${this.buf.length - this.off} unexpected trailing bytes`);
  }

  /**
   * A TupleData's cells, typed by `types` (the relation's column type OIDs) when given. The hot loop of capture:
   * no per-cell view, error text or copy is made unless the cell is malformed (the messages are those of need(),
   * bytes() and text()); ASCII text becomes a string straight from the bytes, anything else through the fatal
   * UTF-8 decoder.
   */
  tuple(types?: CellTypes): PgCell[] {
    const n = this.i16('TupleData column count');
    if (n < 0) this.fail(`TupleData has a negative column count ${n}`);
    if (types !== undefined && types.oids.length !== n) types.wrongCount(n);
    const buf = this.buf;
    const len = buf.length;
    const cells: PgCell[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const at = this.off;
      if (at >= len) this.fail(`column ${i} kind needs 1 bytes, 0 left`, at);
      const k = buf[at] as number;
      this.off = at + 1;
      // One object shape for every cell (typeOid undefined when untyped): no property added after creation.
      const typeOid = types?.oids[i];
      if (k === 0x74 /* t */) {
        if (at + 5 > len) this.fail(`column ${i} length needs 4 bytes, ${len - at - 1} left`, at + 1);
        const n = this.view.getInt32(at + 1);
        const body = at + 5;
        if (n < 0) this.fail(`column ${i} text has a negative length ${n}`, body);
        if (body + n > len) this.fail(`column ${i} text needs ${n} bytes, ${len - body} left`, body);
        this.off = body + n;
        cells[i] = { kind: 'text', text: this.#text(body, body + n, i), typeOid } as PgCell;
      } else if (k === 0x6e /* n */) cells[i] = { kind: 'null', text: undefined, typeOid } as PgCell;
      else if (k === 0x75 /* u */) cells[i] = { kind: 'unchanged', text: undefined, typeOid } as PgCell;
      else if (k === 0x62 /* b */)
        this.fail(`column ${i} is binary ('b'), which proto_version 1 without binary never sends`, at);
      else this.fail(`column ${i} has unknown kind '${String.fromCharCode(k)}'`, at);
    }
    return cells;
  }

  #text(start: number, end: number, column: number): string {
    const buf = this.buf;
    for (let i = start; i < end; i++) {
      if ((buf[i] as number) > 0x7f) return this.text(buf.subarray(start, end), `column ${column} text`, start);
    }
    return this.bytesBuf.latin1Slice(start, end);
  }

  oldTuple(types?: CellTypes): { kind: OldTupleKind; tuple: PgCell[] } {
    const at = this.off;
    const k = this.char('old tuple marker');
    if (k !== 'K' && k !== 'O') this.fail(`expected 'K' or 'O', found '${k}'`, at);
    return { kind: k === 'K' ? 'key' : 'old', tuple: this.tuple(types) };
  }

  newTuple(types?: CellTypes): PgCell[] {
    const at = this.off;
    const k = this.char('new tuple marker');
    if (k !== 'N') this.fail(`expected 'N', found '${k}'`, at);
    return this.tuple(types);
  }

  get pos(): number {
    return this.off;
  }

  peek(): string | undefined {
    const b = this.buf[this.off];
    return b === undefined ? undefined : String.fromCharCode(b);
  }
}

function decodeRelation(r: Reader): RelationMessage {
  const relationOid = r.u32('relation OID');
  const namespace = r.cstring('namespace');
  const name = r.cstring('relation name');
  const identAt = r.pos;
  const ident = r.char('replica identity');
  if (!['d', 'n', 'f', 'i'].includes(ident)) r.fail(`unknown replica identity '${ident}'`, identAt);
  const n = r.i16('column count');
  if (n < 0) r.fail(`negative column count ${n}`);
  const columns: PgColumn[] = [];
  for (let i = 0; i < n; i++) {
    const flags = r.u8(`column ${i} flags`);
    columns.push({
      name: r.cstring(`column ${i} name`),
      typeOid: r.u32(`column ${i} type OID`),
      typeMod: r.i32(`column ${i} type modifier`),
      isKey: (flags & 1) === 1,
    });
  }
  return { tag: 'relation', relationOid, namespace, name, replicaIdentity: ident as ReplicaIdentity, columns };
}

function decodeBody(r: Reader, kind: string, typesOf?: TypesOf): PgoutputMessage {
  switch (kind) {
    case 'B':
      return { tag: 'begin', finalLsn: r.u64('final LSN'), commitTime: r.i64('commit time'), xid: r.u32('xid') };
    case 'C':
      return {
        tag: 'commit',
        flags: r.u8('flags'),
        commitLsn: r.u64('commit LSN'),
        endLsn: r.u64('end LSN'),
        commitTime: r.i64('commit time'),
      };
    case 'O':
      return { tag: 'origin', commitLsn: r.u64('origin commit LSN'), name: r.cstring('origin name') };
    case 'Y':
      return {
        tag: 'type',
        typeOid: r.u32('type OID'),
        namespace: r.cstring('namespace'),
        name: r.cstring('type name'),
      };
    case 'R':
      return decodeRelation(r);
    case 'I': {
      const relationOid = r.u32('relation OID');
      return { tag: 'insert', relationOid, newTuple: r.newTuple(typesOf?.(relationOid)) };
    }
    case 'U': {
      const relationOid = r.u32('relation OID');
      const types = typesOf?.(relationOid);
      const marker = r.peek();
      const old = marker === 'K' || marker === 'O' ? r.oldTuple(types) : undefined;
      const newTuple = r.newTuple(types);
      return old ? { tag: 'update', relationOid, old, newTuple } : { tag: 'update', relationOid, newTuple };
    }
    case 'D': {
      const relationOid = r.u32('relation OID');
      return { tag: 'delete', relationOid, old: r.oldTuple(typesOf?.(relationOid)) };
    }
    case 'T': {
      const n = r.i32('relation count');
      if (n < 0) r.fail(`negative relation count ${n}`);
      const options = r.u8('options');
      const relationOids: number[] = [];
      for (let i = 0; i < n; i++) relationOids.push(r.u32(`relation ${i} OID`));
      return { tag: 'truncate', cascade: (options & 1) !== 0, restartIdentity: (options & 2) !== 0, relationOids };
    }
    case 'M': {
      const flags = r.u8('flags');
      const lsn = r.u64('message LSN');
      const prefix = r.cstring('prefix');
      const content = r.bytes(r.i32('content length'), 'content');
      return { tag: 'message', transactional: (flags & 1) === 1, lsn, prefix, content };
    }
    default:
      return r.fail(`unknown message kind (byte ${kind.charCodeAt(0)})`, 0);
  }
}

/** Decodes one pgoutput message (the payload of one XLogData); cells untyped. Pure. */
export function decodePgoutput(buf: Uint8Array): PgoutputMessage {
  return decodeWith(buf);
}

function decodeWith(buf: Uint8Array, typesOf?: TypesOf): PgoutputMessage {
  if (buf.length === 0) {
    throw new TidemarkError('pgoutput message: empty payload at offset 0', {
      code: 'PG_PROTOCOL',
      context: { offset: 0, length: 0 },
    });
  }
  const kind = String.fromCharCode(buf[0] as number);
  const r = new Reader(buf, kind);
  const msg = decodeBody(r, kind, typesOf);
  r.end();
  return msg;
}

/**
 * The stateful face: remembers every Relation message (the server sends one before the first change of a
 * relation in a session and again after its schema changes) and types each cell with its column's OID.
 */
export class PgoutputDecoder {
  private readonly relations = new Map<number, RelationMessage>();
  /** Per relation: its column type OIDs, made once per Relation message (not per row). */
  private readonly types = new Map<number, CellTypes>();
  private readonly typesOf: TypesOf = (oid) => this.types.get(oid) ?? this.undescribed(oid);
  /** The change being decoded ('Insert', 'Update', 'Delete'), for errors. */
  private current = '';

  relation(oid: number): RelationMessage | undefined {
    return this.relations.get(oid);
  }

  decode(buf: Uint8Array): PgoutputMessage<PgValue> {
    const kind = buf[0];
    // Cells of Insert/Update/Delete are typed as they are read (no second pass over the row).
    const changes = kind === 0x49 /* I */ || kind === 0x55 /* U */ || kind === 0x44; /* D */
    if (changes) this.current = KIND_NAMES[String.fromCharCode(kind)] as string;
    const msg = decodeWith(buf, changes ? this.typesOf : undefined);
    if (msg.tag === 'relation') {
      this.relations.set(msg.relationOid, msg);
      const name = `${msg.namespace}.${msg.name}`;
      const count = msg.columns.length;
      this.types.set(msg.relationOid, {
        oids: msg.columns.map((c) => c.typeOid),
        wrongCount: (n) => this.fail(msg.relationOid, `${n} columns for ${name}, whose Relation message has ${count}`),
      });
    }
    return msg as PgoutputMessage<PgValue>;
  }

  private undescribed(oid: number): never {
    return this.fail(oid, `relation ${oid} was never described by a Relation message`);
  }

  private fail(oid: number, what: string): never {
    const kind = this.current;
    throw new TidemarkError(`pgoutput ${kind} message: ${what} at offset 1`, {
      code: 'PG_PROTOCOL',
      context: { kind, offset: 1, relationOid: oid },
    });
  }
}

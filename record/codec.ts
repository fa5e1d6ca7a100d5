/**
 * Versioned binary encoding of journal entries (record.ts `Entry`). Pure functions: no I/O.
 *
 * Layout (all multi-byte integers little-endian; "varint" = unsigned LEB128 of at most 5 bytes, < 2^32):
 *
 *   u8 version  1, or 2 for an entry that carries a field version-1 readers do not know: a rows entry with
 *               fkChecksOff, a commit with `copied`; or 3 (CODEC_VERSION) for a commit whose position is not a
 *               MySQL one (position kind 2). Everything else is still written as version 1, so older builds read
 *               MySQL journals unchanged (byte for byte) and refuse a newer entry by name ("unknown format
 *               version 3") instead of as damage; this build reads all three.
 *   u8 kind     1 rows | 2 ddl | 3 commit
 *   str source, int seq, str txId
 *   rows:   str schema, str table, u8 op (1 insert | 2 update | 3 delete),
 *           varint nColumns, per column: str name, str type, u8 flags (1 has columnType, 2 has unsigned,
 *           4 unsigned value), [str columnType]; varint nPk, str pk…;
 *           varint nRows, per row: u8 flags (1 before present, 2 after present), then each present image as
 *           varint nValues followed by tagged values; then only when fkChecksOff: u8 rows flags (1 = fkChecksOff)
 *           (entries written before that field end after the last row and decode without it)
 *   ddl:    str schema, varint nTables, (str schema, str table)…, str sql
 *   commit: position (u8 kind 1 = mysql, str file, int offset, u8 hasGtid, [str gtid]; or, version 3 only,
 *           u8 kind 2 = sequence, str engine, int value), int commitTimeUs,
 *           int captureTimeUs, int rowCount, u8 phase (1 baseline | 2 baseline-end | 3 stream; | 0x80 when
 *           `copied` follows: varint n ≥ 1, (str schema, str table, str file, int offset)…; entries written
 *           before that field never set the flag and decode as they did)
 *
 *   str = varint byteLength + UTF-8 bytes. int = a tagged bigint value (below).
 *
 * Tagged values (codec-bytes.ts): 0 null | 1 small int (zigzag varint, fits in [-2^31, 2^31)) | 2 int64 (8 bytes signed) |
 * 3 uint64 (8 bytes unsigned, for values above 2^63-1) | 4 big integer (u8 sign, varint n, n magnitude bytes LE;
 * any size) | 5 float64 (8 bytes, exact bit pattern incl. NaN, -0) | 6 string (str) | 7 bytes (varint n, n bytes).
 *
 * Decoding checks every length against the remaining input and refuses trailing bytes, so a truncated or damaged
 * encoding throws CorruptionError instead of returning something else. Strings must be well-formed: a lone UTF-16
 * surrogate cannot be represented in UTF-8 and would come back as U+FFFD.
 */
import { ByteReader, ByteWriter } from './codec-bytes.ts';
import { CorruptionError, TidemarkError } from '../core/errors.ts';
import { ByTable } from '../core/collections.ts';
import { ENGINE_NAME, type SourcePosition } from './position.ts';
import type {
  Column,
  CommitEntry,
  CopiedTable,
  DdlEntry,
  Entry,
  Phase,
  RowImage,
  RowOp,
  RowsEntry,
  Value,
} from './record.ts';

/** The newest format version this build writes and reads (see the layout above); it also reads version 1. */
export const CODEC_VERSION = 3;
/** Versions this build decodes. */
export const CODEC_VERSIONS: readonly number[] = [1, 2, 3];

/**
 * The version an entry is written with: the lowest that holds it. 3 for a commit at a non-MySQL position, 2 when
 * it carries a field version-1 readers do not know, else 1.
 */
function versionOf(e: Entry): number {
  if (e.kind === 'rows') return e.fkChecksOff ? 2 : 1;
  if (e.kind === 'commit') {
    if (e.position.kind !== 'mysql') return 3;
    return e.copied && e.copied.length > 0 ? 2 : 1;
  }
  return 1;
}

const KIND_ROWS = 1;
const KIND_DDL = 2;
const KIND_COMMIT = 3;

const OPS: readonly RowOp[] = ['insert', 'update', 'delete'];
const PHASES: readonly Phase[] = ['baseline', 'baseline-end', 'stream'];
/** Flag in the phase byte: the commit carries `copied` (entries from before that field never set it). */
const PHASE_COPIED = 0x80;
/** Position kind bytes of a commit. */
const POSITION_MYSQL = 1;
const POSITION_SEQUENCE = 2;

const scratch = new ByteWriter();
/** Larger scratch buffers are dropped after use so one huge entry does not pin memory forever. */
const SCRATCH_KEEP = 8 << 20;

function writePosition(w: ByteWriter, p: SourcePosition): void {
  if (p.kind === 'sequence') {
    w.u8(POSITION_SEQUENCE);
    w.str(p.engine);
    w.int(p.value);
    return;
  }
  if (p.kind !== 'mysql') throw new TidemarkError(`codec: unknown position kind`, { code: 'CODEC_VALUE' });
  w.u8(POSITION_MYSQL);
  w.str(p.binlog.file);
  w.int(p.binlog.offset);
  if (p.gtid === undefined) w.u8(0);
  else {
    w.u8(1);
    w.str(p.gtid);
  }
}

function writeImage(w: ByteWriter, img: readonly Value[]): void {
  w.varint(img.length);
  for (let i = 0; i < img.length; i++) w.value(img[i] as Value);
}

function writeRows(w: ByteWriter, e: RowsEntry): void {
  w.str(e.schema);
  w.str(e.table);
  w.u8(OPS.indexOf(e.op) + 1);
  w.varint(e.columns.length);
  for (const c of e.columns) {
    w.str(c.name);
    w.str(c.type);
    const flags = (c.columnType !== undefined ? 1 : 0) | (c.unsigned !== undefined ? 2 : 0) | (c.unsigned ? 4 : 0);
    w.u8(flags);
    if (c.columnType !== undefined) w.str(c.columnType);
  }
  w.varint(e.pk.length);
  for (const k of e.pk) w.str(k);
  w.varint(e.rows.length);
  for (const r of e.rows) {
    w.u8((r.before ? 1 : 0) | (r.after ? 2 : 0));
    if (r.before) writeImage(w, r.before);
    if (r.after) writeImage(w, r.after);
  }
  if (e.fkChecksOff) w.u8(1);
}

/** Encodes one entry. The result is a fresh Uint8Array owned by the caller. */
export function encodeEntry(e: Entry): Uint8Array {
  const w = scratch;
  w.pos = 0;
  try {
    w.u8(versionOf(e));
    w.u8(e.kind === 'rows' ? KIND_ROWS : e.kind === 'ddl' ? KIND_DDL : KIND_COMMIT);
    w.str(e.source);
    w.int(e.seq);
    w.str(e.txId);
    if (e.kind === 'rows') {
      if (!OPS.includes(e.op)) throw new TidemarkError(`codec: unknown row op "${e.op}"`, { code: 'CODEC_VALUE' });
      writeRows(w, e);
    } else if (e.kind === 'ddl') {
      w.str(e.schema);
      w.varint(e.tables.length);
      for (const t of e.tables) {
        w.str(t.schema);
        w.str(t.table);
      }
      w.str(e.sql);
    } else {
      const phase = PHASES.indexOf(e.phase);
      if (phase < 0) throw new TidemarkError(`codec: unknown phase "${e.phase}"`, { code: 'CODEC_VALUE' });
      writePosition(w, e.position);
      w.int(e.commitTimeUs);
      w.int(e.captureTimeUs);
      w.int(e.rowCount);
      const copied = e.copied && e.copied.length > 0 ? e.copied : null;
      w.u8((phase + 1) | (copied ? PHASE_COPIED : 0));
      if (copied) {
        w.varint(copied.length);
        for (const c of copied) {
          w.str(c.schema);
          w.str(c.table);
          w.str(c.at.file);
          w.int(c.at.offset);
        }
      }
    }
    return w.buf.slice(0, w.pos);
  } finally {
    if (w.buf.length > SCRATCH_KEEP) {
      w.buf = new Uint8Array(64 * 1024);
      w.view = new DataView(w.buf.buffer);
    }
    w.pos = 0;
  }
}

/**
 * The column list of a rows entry. Entries of one table mostly carry the same list, byte for byte: when the bytes
 * at the reader equal the list last read for that table, that list is handed out again (shared, as capture shares
 * one list across a table's entries) instead of decoding its names and types anew — ~2 % of an OLTP apply's main
 * thread and its allocations (issue #15). A list's bytes determine it and its length, so this decodes exactly
 * what parsing them would.
 */
function readColumns(r: ByteReader, schema: string, table: string): Column[] {
  const last = lastColumns.get(schema, table);
  if (last && startsWith(r.buf, r.pos, last.bytes)) {
    r.pos += last.bytes.length;
    return last.cols;
  }
  const start = r.pos;
  const cols = parseColumns(r);
  lastColumns.set(schema, table, { bytes: r.buf.slice(start, r.pos), cols });
  return cols;
}

const lastColumns = new ByTable<{ bytes: Uint8Array; cols: Column[] }>(1_000, 1_000);

function startsWith(buf: Uint8Array, at: number, prefix: Uint8Array): boolean {
  if (at + prefix.length > buf.length) return false;
  for (let i = 0; i < prefix.length; i++) if (buf[at + i] !== prefix[i]) return false;
  return true;
}

function parseColumns(r: ByteReader): Column[] {
  const n = r.count('column count', 3);
  const cols: Column[] = [];
  for (let i = 0; i < n; i++) {
    const name = r.str('column name');
    const type = r.str('column type');
    const flags = r.u8('column flags');
    if (flags > 7) r.fail(`bad column flags ${flags}`);
    const c: { name: string; type: string; columnType?: string; unsigned?: boolean } = { name, type };
    if (flags & 1) c.columnType = r.str('column full type');
    if (flags & 2) c.unsigned = (flags & 4) !== 0;
    cols.push(c);
  }
  return cols;
}

/** What a rows entry holds between its base (source, seq, txId) and its rows, and the number of rows. */
export interface RowsHead {
  readonly schema: string;
  readonly table: string;
  readonly op: RowOp;
  readonly columns: Column[];
  readonly pk: string[];
  readonly rowCount: number;
}

/** Reads a rows entry's table, op, columns, key and row count (decodeEntry and codec-keys' scanRows). */
export function readRowsHead(r: ByteReader): RowsHead {
  const schema = r.str('schema');
  const table = r.str('table');
  const opCode = r.u8('op');
  const op = OPS[opCode - 1];
  if (!op) return r.fail(`unknown row op ${opCode}`);
  const columns = readColumns(r, schema, table);
  const nPk = r.count('pk count', 1);
  const pk: string[] = [];
  for (let i = 0; i < nPk; i++) pk.push(r.str('pk column'));
  return { schema, table, op, columns, pk, rowCount: r.count('row count', 1) };
}

function readRows(r: ByteReader, base: { source: string; seq: bigint; txId: string }, version: number): RowsEntry {
  const { schema, table, op, columns, pk, rowCount: nRows } = readRowsHead(r);
  const rows = new Array<RowImage>(nRows);
  for (let i = 0; i < nRows; i++) {
    const flags = r.u8('row flags');
    if (flags > 3) r.fail(`bad row flags ${flags}`);
    const before = flags & 1 ? r.image() : null;
    const after = flags & 2 ? r.image() : null;
    rows[i] = { before, after };
  }
  const e: RowsEntry = { kind: 'rows', ...base, schema, table, op, columns, pk, rows };
  // Version 2 only: the optional tail (absent when no flag is set); a version-1 entry ends here.
  if (version < 2 || r.pos === r.buf.length) return e;
  const flags = r.u8('rows flags');
  if (flags !== 1) r.fail(`bad rows flags ${flags}`);
  return { ...e, fkChecksOff: true };
}

function readDdl(r: ByteReader, base: { source: string; seq: bigint; txId: string }): DdlEntry {
  const schema = r.str('schema');
  const n = r.count('table count', 2);
  const tables: { schema: string; table: string }[] = [];
  for (let i = 0; i < n; i++) tables.push({ schema: r.str('table schema'), table: r.str('table name') });
  const sql = r.str('sql');
  return { kind: 'ddl', ...base, schema, tables, sql };
}

function readPosition(r: ByteReader, version: number): SourcePosition {
  const pk = r.u8('position kind');
  // A sequence position exists from version 3 on; a version-3 entry always holds one (versionOf).
  if (pk === POSITION_SEQUENCE && version >= 3) {
    const engine = r.str('position engine');
    const value = r.int('position value');
    if (!ENGINE_NAME.test(engine)) r.fail('bad position engine name');
    if (value < 0n) r.fail(`negative position value ${value}`);
    return { kind: 'sequence', engine, value };
  }
  if (pk !== POSITION_MYSQL || version >= 3) r.fail(`unknown position kind ${pk} in a version ${version} entry`);
  const file = r.str('binlog file');
  const offset = r.int('binlog offset');
  const hasGtid = r.u8('gtid flag');
  if (hasGtid > 1) r.fail(`bad gtid flag ${hasGtid}`);
  return hasGtid
    ? { kind: 'mysql', binlog: { file, offset }, gtid: r.str('gtid') }
    : { kind: 'mysql', binlog: { file, offset } };
}

function readCommit(r: ByteReader, base: { source: string; seq: bigint; txId: string }, version: number): CommitEntry {
  const position = readPosition(r, version);
  const commitTimeUs = r.int('commit time');
  const captureTimeUs = r.int('capture time');
  const rowCount = r.int('row count');
  const ph = r.u8('phase');
  // The `copied` flag exists from version 2 on: in a version-1 entry the byte is the phase alone.
  const phase = PHASES[(version < 2 ? ph : ph & ~PHASE_COPIED) - 1];
  if (!phase) return r.fail(`unknown phase ${ph}`);
  const e: CommitEntry = { kind: 'commit', ...base, position, commitTimeUs, captureTimeUs, rowCount, phase };
  if ((ph & PHASE_COPIED) === 0) return e;
  const n = r.count('copied count', 4);
  if (n === 0) r.fail('empty copied list');
  const copied: CopiedTable[] = [];
  for (let i = 0; i < n; i++) {
    const schema = r.str('copied schema');
    const table = r.str('copied table');
    copied.push({ schema, table, at: { file: r.str('copied file'), offset: r.int('copied offset') } });
  }
  return { ...e, copied };
}

/** Decodes one entry; throws CorruptionError for an unknown version, truncation, garbage or trailing bytes. */
export function decodeEntry(bytes: Uint8Array): Entry {
  const r = new ByteReader(bytes);
  try {
    const version = r.u8('version');
    if (!CODEC_VERSIONS.includes(version)) {
      r.pos = 0;
      r.fail(`unknown format version ${version} (this build reads versions ${CODEC_VERSIONS.join(', ')})`);
    }
    const kind = r.u8('kind');
    const base = { source: r.str('source'), seq: r.int('seq'), txId: r.str('txId') };
    let e: Entry;
    if (kind === KIND_ROWS) e = readRows(r, base, version);
    else if (kind === KIND_DDL) e = readDdl(r, base);
    else if (kind === KIND_COMMIT) e = readCommit(r, base, version);
    else {
      r.pos = 1;
      return r.fail(`unknown entry kind ${kind}`);
    }
    if (r.pos !== bytes.length) r.fail(`${bytes.length - r.pos} trailing bytes after the entry`);
    return e;
  } catch (err) {
    if (err instanceof CorruptionError) throw err;
    throw new CorruptionError(`entry encoding: cannot decode (${(err as Error).message})`, { offset: r.pos }, err);
  }
}

/** The entry kind of an encoding without decoding it (checks version and kind byte only). */
export function peekEntryKind(bytes: Uint8Array): Entry['kind'] {
  if (bytes.length < 2 || !CODEC_VERSIONS.includes(bytes[0] as number)) {
    throw new CorruptionError(`entry encoding: not a version ${CODEC_VERSIONS.join('/')} entry`, {
      length: bytes.length,
    });
  }
  const k = bytes[1];
  if (k === KIND_ROWS) return 'rows';
  if (k === KIND_DDL) return 'ddl';
  if (k === KIND_COMMIT) return 'commit';
  throw new CorruptionError(`entry encoding: unknown entry kind ${k}`, { offset: 1 });
}

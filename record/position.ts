/**
 * Typed source positions, tagged by engine. Every offset is a bigint: binlog offsets, SCNs and LSNs can exceed 2^53.
 *
 * Two shapes exist:
 *   - `mysql`: a MySQL/MariaDB binlog file + offset (+ the executed GTID state when known);
 *   - `sequence`: one monotonic log counter of any other engine (PostgreSQL LSN, Oracle SCN, SQL Server LSN, the
 *     test engine's change id), tagged with the engine's name so positions of two engines never compare.
 * Loaded strictly (STYLE.md §6): a position without a binlog file name or an engine name is refused, never defaulted.
 */
import { CorruptionError } from '../core/errors.ts';

/** A place in a MySQL/MariaDB binary log: the file name and the byte offset of the next event to read. */
export interface BinlogPosition {
  readonly file: string;
  readonly offset: bigint;
}

/**
 * Position of a MySQL/MariaDB source after a transaction. `gtid` is the executed-GTID state at that point when
 * known: a MariaDB GTID position ("0-1-42[,1-1-7]") or a MySQL GTID set ("uuid:1-27").
 */
export interface MysqlPosition {
  readonly kind: 'mysql';
  readonly binlog: BinlogPosition;
  readonly gtid?: string;
}

/**
 * Position of a source whose change log is addressed by one monotonic number: a PostgreSQL LSN, an Oracle SCN, a
 * SQL Server LSN (80 bits: bigint holds it), the test engine's change id. `engine` names the engine (the
 * `source.kind` of the config, e.g. "postgres"); `value` grows with every transaction of that source.
 */
export interface SequencePosition {
  readonly kind: 'sequence';
  readonly engine: string;
  readonly value: bigint;
}

/** Where a source was after a transaction; the journal, the targets' stored positions and status all carry it. */
export type SourcePosition = MysqlPosition | SequencePosition;

/** An engine name in a sequence position: what `source.kind` accepts (lower-case letters, digits, "-"). */
export const ENGINE_NAME = /^[a-z][a-z0-9-]{0,31}$/;

/** A sequence position, checked (engine name shape, value ≥ 0). */
export function sequencePosition(engine: string, value: bigint): SequencePosition {
  if (!ENGINE_NAME.test(engine)) throw new CorruptionError(`position engine "${engine}" is not an engine name`, {});
  if (value < 0n) throw new CorruptionError(`position value ${value} of engine "${engine}" is negative`, { engine });
  return { kind: 'sequence', engine, value };
}

/** Binlog file names end in a numeric suffix (mysql-bin.000042); ordering is by that number, then offset. */
export function binlogSuffix(file: string): bigint {
  const m = /\.(\d+)$/.exec(file);
  if (!m?.[1]) throw new CorruptionError(`binlog file name "${file}" has no numeric suffix`, { file });
  return BigInt(m[1]);
}

export function compareBinlog(a: BinlogPosition, b: BinlogPosition): number {
  const fa = binlogSuffix(a.file);
  const fb = binlogSuffix(b.file);
  if (fa !== fb) return fa < fb ? -1 : 1;
  if (a.offset === b.offset) return 0;
  return a.offset < b.offset ? -1 : 1;
}

/** The engine a position belongs to ("mysql" for a binlog position). */
export function positionEngine(p: SourcePosition): string {
  return p.kind === 'mysql' ? 'mysql' : p.engine;
}

/**
 * Orders two positions of one source (-1, 0, 1). Positions of different engines do not compare: that is a
 * journal or state file mixing two sources, refused as CorruptionError.
 */
export function comparePositions(a: SourcePosition, b: SourcePosition): number {
  if (a.kind === 'mysql' && b.kind === 'mysql') return compareBinlog(a.binlog, b.binlog);
  if (a.kind === 'sequence' && b.kind === 'sequence' && a.engine === b.engine) {
    return a.value === b.value ? 0 : a.value < b.value ? -1 : 1;
  }
  throw new CorruptionError(
    `positions of different engines do not compare ("${positionEngine(a)}" and "${positionEngine(b)}")`,
    { a: positionEngine(a), b: positionEngine(b) },
  );
}

/** The same place in the log (a GTID difference alone does not count: it is derived from the binlog place). */
export function samePosition(a: SourcePosition, b: SourcePosition): boolean {
  if (a.kind === 'mysql' && b.kind === 'mysql') {
    return a.binlog.file === b.binlog.file && a.binlog.offset === b.binlog.offset;
  }
  return a.kind === 'sequence' && b.kind === 'sequence' && a.engine === b.engine && a.value === b.value;
}

/** The binlog place of a MySQL position; null for another engine's (for code that only MySQL features use). */
export function binlogOf(p: SourcePosition | null | undefined): BinlogPosition | null {
  return p?.kind === 'mysql' ? p.binlog : null;
}

/**
 * A position that must be MySQL's (MySQL capture resuming from its journal, MySQL-only features); another engine's
 * is refused as CorruptionError naming `where` (the journal or state file belongs to a source of another kind).
 */
export function asMysql(p: SourcePosition, where: string): MysqlPosition {
  if (p.kind === 'mysql') return p;
  throw new CorruptionError(`${where}: a position of engine "${p.engine}" where a MySQL binlog position belongs`, {
    where,
    engine: p.engine,
  });
}

export function formatPosition(p: SourcePosition): string {
  if (p.kind === 'sequence') return `${p.engine}:${p.value}`;
  const base = `${p.binlog.file}:${p.binlog.offset}`;
  return p.gtid ? `${base} (gtid ${p.gtid})` : base;
}

/** JSON-safe form of a MySQL position (bigint as decimal string); its shape predates the other engines. */
export interface MysqlPositionJson {
  kind: 'mysql';
  file: string;
  offset: string;
  gtid?: string;
}

/** JSON-safe form of a sequence position. */
export interface SequencePositionJson {
  kind: 'sequence';
  engine: string;
  value: string;
}

/** JSON-safe form (bigint as decimal string) for cursor files, status output and the position table. */
export type PositionJson = MysqlPositionJson | SequencePositionJson;

export function positionToJson(p: SourcePosition): PositionJson {
  if (p.kind === 'sequence') return { kind: 'sequence', engine: p.engine, value: p.value.toString() };
  const out: MysqlPositionJson = { kind: 'mysql', file: p.binlog.file, offset: p.binlog.offset.toString() };
  if (p.gtid) out.gtid = p.gtid;
  return out;
}

function decimal(v: unknown, what: string, where: string): bigint {
  if (typeof v !== 'string' || !/^\d+$/.test(v)) {
    throw new CorruptionError(`${where}: position ${what} must be a decimal string`, { where });
  }
  return BigInt(v);
}

function sequenceFromJson(o: Partial<SequencePositionJson>, where: string): SequencePosition {
  if (typeof o.engine !== 'string' || !ENGINE_NAME.test(o.engine)) {
    throw new CorruptionError(`${where}: position has no engine name`, { where });
  }
  return { kind: 'sequence', engine: o.engine, value: decimal(o.value, 'value', where) };
}

export function positionFromJson(j: unknown, where: string): SourcePosition {
  const o = j as Partial<MysqlPositionJson> | Partial<SequencePositionJson> | null;
  if (o?.kind === 'sequence') return sequenceFromJson(o, where);
  if (o?.kind !== 'mysql') {
    throw new CorruptionError(`${where}: position kind must be "mysql" or "sequence"`, { where });
  }
  if (typeof o.file !== 'string' || o.file === '') {
    throw new CorruptionError(`${where}: position has no binlog file name`, { where });
  }
  const pos: MysqlPosition = {
    kind: 'mysql',
    binlog: { file: o.file, offset: decimal(o.offset, 'offset', where) },
    ...(typeof o.gtid === 'string' && o.gtid !== '' ? { gtid: o.gtid } : {}),
  };
  return pos;
}

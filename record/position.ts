/**
 * Typed source positions. Every offset is a bigint: binlog offsets, SCNs and LSNs can exceed 2^53.
 * Loaded strictly (STYLE.md §6): a position without a binlog file name is refused, never defaulted.
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

/** Later adapters add their own kinds (Oracle SCN, PostgreSQL LSN) to this union. */
export type SourcePosition = MysqlPosition;

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

export function formatPosition(p: SourcePosition): string {
  const base = `${p.binlog.file}:${p.binlog.offset}`;
  return p.gtid ? `${base} (gtid ${p.gtid})` : base;
}

/** JSON-safe form (bigint as decimal string) for cursor files, status output and the position table. */
export interface PositionJson {
  kind: 'mysql';
  file: string;
  offset: string;
  gtid?: string;
}

export function positionToJson(p: SourcePosition): PositionJson {
  const out: PositionJson = { kind: 'mysql', file: p.binlog.file, offset: p.binlog.offset.toString() };
  if (p.gtid) out.gtid = p.gtid;
  return out;
}

export function positionFromJson(j: unknown, where: string): SourcePosition {
  const o = j as Partial<PositionJson> | null;
  if (o?.kind !== 'mysql') throw new CorruptionError(`${where}: position kind must be "mysql"`, { where });
  if (typeof o.file !== 'string' || o.file === '') {
    throw new CorruptionError(`${where}: position has no binlog file name`, { where });
  }
  if (typeof o.offset !== 'string' || !/^\d+$/.test(o.offset)) {
    throw new CorruptionError(`${where}: position offset must be a decimal string`, { where });
  }
  const pos: MysqlPosition = {
    kind: 'mysql',
    binlog: { file: o.file, offset: BigInt(o.offset) },
    ...(typeof o.gtid === 'string' && o.gtid !== '' ? { gtid: o.gtid } : {}),
  };
  return pos;
}

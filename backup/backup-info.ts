/**
 * What mariadb-backup says about the backup it streams, for the catalog: the LSN range from
 * `xtrabackup_checkpoints` and the binlog position + GTID from `xtrabackup_binlog_info` (MariaDB 10.11 names;
 * 11.x renamed them `mariadb_backup_*`, accepted too). Pure: `MetaCapture` watches parsed mbstream chunks and keeps
 * the (small) payloads of just those two files; the parsers turn their text into typed values (LSNs and positions
 * as bigint).
 *
 *   xtrabackup_checkpoints   "key = value" lines: backup_type (full-backuped | incremental | …), from_lsn,
 *                            to_lsn, last_lsn (and others we keep as text)
 *   xtrabackup_binlog_info   one line "<binlog file>\t<position>\t<GTID list>" (the GTID list may be absent or
 *                            empty when GTIDs are off)
 */
import { TidemarkError } from '../core/errors.ts';
import type { MbstreamChunk } from './mbstream.ts';

export interface Checkpoints {
  /** As written: `full-backuped`, `incremental`, (after --prepare) `log-applied`, `full-prepared`. */
  readonly backupType: string;
  readonly fromLsn: bigint;
  readonly toLsn: bigint;
  readonly lastLsn: bigint;
  /** Every key = value line, as text. */
  readonly fields: Readonly<Record<string, string>>;
}

export interface BinlogInfo {
  readonly file: string;
  readonly position: bigint;
  /** The server's gtid_binlog_pos at the backup's consistent point ('0-1-5,1-2-9'), or null when none. */
  readonly gtid: string | null;
}

export const CHECKPOINTS_FILES = ['xtrabackup_checkpoints', 'mariadb_backup_checkpoints'] as const;
export const BINLOG_INFO_FILES = ['xtrabackup_binlog_info', 'mariadb_backup_binlog_info'] as const;
/** Both files are a few lines; anything larger is not what we think it is. */
const MAX_META_BYTES = 64 * 1024;

function bad(what: string, file: string): TidemarkError {
  return new TidemarkError(`mariadb-backup's '${file}' is not understood: ${what}`, {
    code: 'MBSTREAM_CORRUPT',
    retriable: false,
    context: { path: file },
  });
}

function lsn(fields: Record<string, string>, key: string, file: string): bigint {
  const v = fields[key];
  if (v === undefined || !/^\d+$/.test(v))
    throw bad(`'${key}' is ${v === undefined ? 'missing' : `not a number ('${v}')`}`, file);
  return BigInt(v);
}

export function parseCheckpoints(text: string, file = 'xtrabackup_checkpoints'): Checkpoints {
  const fields: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const eq = line.indexOf('=');
    if (eq < 0) throw bad(`line '${line}' has no '='`, file);
    fields[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  const backupType = fields['backup_type'];
  if (backupType === undefined || backupType === '') throw bad("'backup_type' is missing", file);
  return {
    backupType,
    fromLsn: lsn(fields, 'from_lsn', file),
    toLsn: lsn(fields, 'to_lsn', file),
    lastLsn: lsn(fields, 'last_lsn', file),
    fields,
  };
}

export function parseBinlogInfo(text: string, file = 'xtrabackup_binlog_info'): BinlogInfo {
  const line = text.split('\n').find((l) => l.trim() !== '');
  if (line === undefined) throw bad('the file is empty', file);
  const [name, pos, gtid] = line.split('\t');
  if (name === undefined || name === '' || pos === undefined || !/^\d+$/.test(pos)) {
    throw bad(`expected '<file>\\t<position>[\\t<gtid>]', got '${line}'`, file);
  }
  const g = gtid?.trim() ?? '';
  if (g !== '' && !/^\d+-\d+-\d+(,\d+-\d+-\d+)*$/.test(g)) throw bad(`GTID list '${g}' is malformed`, file);
  return { file: name, position: BigInt(pos), gtid: g === '' ? null : g };
}

export interface CapturedInfo {
  readonly checkpoints: Checkpoints | null;
  readonly binlog: BinlogInfo | null;
}

/** Watches parsed chunks and keeps the two metadata files (top level of the stream only). */
export class MetaCapture {
  readonly #bufs = new Map<string, Buffer[]>();
  readonly #done = new Map<string, Buffer>();

  /** The files whose payloads it reads (MbstreamParserOptions.keepPayload). */
  static wants(path: string): boolean {
    return (
      (CHECKPOINTS_FILES as readonly string[]).includes(path) || (BINLOG_INFO_FILES as readonly string[]).includes(path)
    );
  }

  observe(chunk: MbstreamChunk): void {
    const name = chunk.path;
    if (!MetaCapture.wants(name)) return;
    if (chunk.type === 'payload') {
      const parts = this.#bufs.get(name) ?? [];
      if (chunk.rewrite && !this.#bufs.has(name)) this.#done.delete(name);
      parts.push(Buffer.from(chunk.payload));
      if (parts.reduce((n, b) => n + b.length, 0) > MAX_META_BYTES)
        throw bad(`larger than ${MAX_META_BYTES} bytes`, name);
      this.#bufs.set(name, parts);
    } else if (chunk.type === 'eof') {
      this.#done.set(name, Buffer.concat(this.#bufs.get(name) ?? []));
      this.#bufs.delete(name);
    }
  }

  /** The parsed files seen complete so far (null when a file did not appear). */
  result(): CapturedInfo {
    const find = (names: readonly string[]): [string, string] | null => {
      for (const n of names) {
        const b = this.#done.get(n);
        if (b !== undefined) return [n, b.toString('utf8')];
      }
      return null;
    };
    const cp = find(CHECKPOINTS_FILES);
    const bl = find(BINLOG_INFO_FILES);
    return {
      checkpoints: cp === null ? null : parseCheckpoints(cp[1], cp[0]),
      binlog: bl === null ? null : parseBinlogInfo(bl[1], bl[0]),
    };
  }
}

/**
 * The I/O half of a point-in-time replay: log backups → binlog files on disk → `mariadb-binlog | mariadb` into a
 * scratch server → its GTID position checked against the target.
 *
 * Binlog files: each segment's verified plaintext (pipeline/reader.ts releases a chunk only after its GCM tag was
 * checked, and fails the stream at a bad piece) is written into `<dir>/<binlogFile>` at its startPos; after each
 * segment the file must be exactly as long as the segment's endPos. The first file may have a hole (zeros) between
 * its header segment and the segment holding the start position, never read by mariadb-binlog, which reads the
 * header events and then seeks to --start-position. The caller creates the directory (0700) and removes it.
 *
 * Replay: `mariadb-binlog --start-position=<the backup's binlog position> --stop-position=<target GTID>` over the
 * files from the backup's binlog file on (the numeric start applies to the first file only; the GTID stop is
 * inclusive), piped into `mariadb --binary-mode`. The password goes through MYSQL_PWD, never argv.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { TidemarkError } from '../../core/errors.ts';
import type { Manifest } from '../manifest.ts';
import type { EncryptionHeader, MasterKey } from '../pipeline/keys.ts';
import { readSealedBackup } from '../pipeline/reader.ts';
import type { BackupStore } from '../store.ts';
import { type BinlogGroup, scanGroups } from './binlog-groups.ts';
import { watchChild } from './child.ts';
import { parseGtidPos } from './pitr-plan.ts';

/** How to reach the scratch server the replay goes into. */
export interface ScratchServer {
  readonly host?: string;
  readonly port?: number;
  readonly socket?: string;
  readonly user: string;
  readonly password: string;
}

function replayError(what: string, context: Record<string, string> = {}): TidemarkError {
  return new TidemarkError(`point-in-time replay: ${what}`, { code: 'BACKUP_PITR_REPLAY', context });
}

/** A log backup's encryption header (one without is refused: not sealed by tidemark). */
export function sealed(m: Manifest): EncryptionHeader {
  if (m.encryption === null) {
    throw new TidemarkError(`log backup '${m.id}' has no encryption header (not sealed by tidemark)`, {
      code: 'BACKUP_CHAIN_BROKEN',
      context: { id: m.id },
    });
  }
  return m.encryption as unknown as EncryptionHeader;
}

/** One log backup's verified plaintext, whole (a segment is a few seconds of binlog). */
export async function readSegment(store: BackupStore, master: MasterKey, m: Manifest): Promise<Buffer> {
  const parts: Buffer[] = [];
  const src = readSealedBackup({ store, master, backupId: m.id, pieces: m.pieces, encryption: sealed(m) });
  for await (const b of src) parts.push(b as Buffer);
  return Buffer.concat(parts);
}

/**
 * The event groups of the replayed segments, per binlog file in order, read back from the files writeBinlogFiles
 * wrote into `dir` (verified plaintext; each file from its first segment's start, so a header hole is not read).
 */
export async function writtenGroups(
  dir: string,
  segments: readonly Manifest[],
): Promise<{ file: string; groups: BinlogGroup[] }[]> {
  const ranges: { file: string; start: bigint; end: bigint }[] = [];
  for (const m of segments) {
    const l = m.log as NonNullable<Manifest['log']>;
    const cur = ranges.at(-1);
    if (cur?.file === l.binlogFile) cur.end = l.endPos;
    else ranges.push({ file: l.binlogFile, start: l.startPos, end: l.endPos });
  }
  const out: { file: string; groups: BinlogGroup[] }[] = [];
  for (const r of ranges) {
    const fh = await open(join(dir, r.file), 'r');
    try {
      const buf = Buffer.alloc(Number(r.end - r.start));
      const { bytesRead } = await fh.read(buf, 0, buf.length, Number(r.start));
      out.push({ file: r.file, groups: scanGroups(buf.subarray(0, bytesRead), r.start) });
    } finally {
      await fh.close();
    }
  }
  return out;
}

/**
 * Writes the header segment (if any) and the segments (seq order) as binlog files into `dir`; returns the file
 * names in order.
 */
export async function writeBinlogFiles(
  store: BackupStore,
  master: MasterKey,
  header: Manifest | null,
  segments: readonly Manifest[],
  dir: string,
  signal?: AbortSignal,
): Promise<string[]> {
  const files: string[] = [];
  for (const m of header === null ? segments : [header, ...segments]) {
    const l = m.log as NonNullable<Manifest['log']>;
    if (files.at(-1) !== l.binlogFile) files.push(l.binlogFile);
    const src = readSealedBackup({ store, master, backupId: m.id, pieces: m.pieces, encryption: sealed(m), signal });
    const path = join(dir, l.binlogFile);
    const flags = l.startPos === 0n ? 'w' : 'r+';
    await pipeline(src, createWriteStream(path, { flags, start: Number(l.startPos), mode: 0o600 }));
    const size = BigInt((await stat(path)).size);
    if (size !== l.endPos) {
      throw new TidemarkError(
        `log backup '${m.id}' (seq ${l.seq}) holds ${l.binlogFile} up to ${size}, its manifest says ${l.endPos}`,
        { code: 'BACKUP_INTEGRITY', context: { id: m.id } },
      );
    }
  }
  return files;
}

function clientArgs(s: ScratchServer): string[] {
  const where =
    s.socket !== undefined ? [`--socket=${s.socket}`] : [`--host=${s.host ?? '127.0.0.1'}`, `--port=${s.port ?? 3306}`];
  return ['--no-defaults', ...where, `--user=${s.user}`];
}

const lastLines = (s: string): string => s.trim().split('\n').slice(-8).join(' | ');

export interface ReplayOptions {
  readonly dir: string;
  readonly files: readonly string[];
  readonly startPosition: bigint;
  readonly stopGtid: string;
  readonly server: ScratchServer;
  readonly mariadbBinlog?: string;
  readonly mariadb?: string;
  readonly signal?: AbortSignal;
}

/** `mariadb-binlog … | mariadb …` (see the module comment); fails with both tools' stderr tails. */
export async function replayBinlogs(o: ReplayOptions): Promise<void> {
  const env = { ...process.env, MYSQL_PWD: o.server.password };
  const dump = spawn(
    o.mariadbBinlog ?? 'mariadb-binlog',
    [
      '--no-defaults',
      `--start-position=${o.startPosition}`,
      `--stop-position=${o.stopGtid}`,
      ...o.files.map((f) => join(o.dir, f)),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], signal: o.signal },
  );
  const load = spawn(o.mariadb ?? 'mariadb', [...clientArgs(o.server), '--binary-mode'], {
    stdio: ['pipe', 'ignore', 'pipe'],
    env,
    signal: o.signal,
  });
  const d = watchChild(dump);
  const l = watchChild(load);
  dump.stdout?.pipe(load.stdin as NodeJS.WritableStream);
  load.stdin?.on('error', () => undefined); // EPIPE when mariadb fails first: its exit status tells
  const [dc, lc] = await Promise.all([d.exited, l.exited]);
  if (dc !== 0 || lc !== 0) {
    throw replayError(
      `mariadb-binlog exited ${String(dc)}${d.tail() ? ` (${lastLines(d.tail())})` : ''}, ` +
        `mariadb exited ${String(lc)}${l.tail() ? ` (${lastLines(l.tail())})` : ''}`,
    );
  }
}

/** One value of the scratch server (`mariadb -N -B -e`). */
export async function queryValue(server: ScratchServer, sql: string, mariadb = 'mariadb'): Promise<string> {
  const child = spawn(mariadb, [...clientArgs(server), '-N', '-B', '-e', sql], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, MYSQL_PWD: server.password },
  });
  let out = '';
  child.stdout?.on('data', (b: Buffer) => {
    out += b.toString();
  });
  const w = watchChild(child);
  const code = await w.exited;
  if (code !== 0)
    throw replayError(`'${sql}' on the scratch server failed (exit ${String(code)}): ${lastLines(w.tail())}`);
  return out.trim();
}

/** The scratch server's gtid_binlog_pos holds exactly the target's GTID in each of the target's domains. */
export async function checkReached(server: ScratchServer, target: string, mariadb?: string): Promise<string> {
  const got = await queryValue(server, 'SELECT @@GLOBAL.gtid_binlog_pos', mariadb);
  const pos = parseGtidPos(got);
  for (const [domain, want] of parseGtidPos(target)) {
    const have = pos.get(domain);
    if (have === undefined || have.seq !== want.seq || have.server !== want.server) {
      throw replayError(`the restored server is at GTID ${got || '(none)'}, not at the target ${target}`, {
        target,
        reached: got,
      });
    }
  }
  return got;
}

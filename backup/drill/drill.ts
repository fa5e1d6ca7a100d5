/**
 * A restore drill (I/O): prove that the newest backup chain plus the log archive restore to exactly what the
 * source held. Never throws for a failed restore: the failure is the result (recorded, and the CLI exits 1).
 *
 *   1. the source, in one consistent snapshot (START TRANSACTION WITH CONSISTENT SNAPSHOT): its binlog position
 *      (`binlog_snapshot_file` / `_position`, consistent with the snapshot) and per-table checksums of every user
 *      schema;
 *   2. wait (up to `waitSeconds`) until the log archive reaches that position; the GTID position there: target.ts
 *      and a scan of the segment holding it;
 *   3. restoreToPoint to that GTID (the newest backup at or before it, its chain, the segments — every piece's
 *      hash, every chunk's tag, every mbstream CRC and binlog CRC checked on the way);
 *   4. the restored server's checksums → the tables that differ; the scratch server is stopped.
 */
import { rm } from 'node:fs/promises';
import type mysql from 'mysql2/promise';
import type { Logger } from 'pino';
import { TidemarkError } from '../../core/errors.ts';
import { silentLogger } from '../../core/log.ts';
import { type MysqlEndpoint, openSession } from '../../mysql/session.ts';
import type { MasterKey } from '../pipeline/keys.ts';
import { scanGroups } from '../restore/binlog-groups.ts';
import { storeManifests, restoreToPoint } from '../restore/pitr.ts';
import { advance, formatGtidPos, parseGtidPos } from '../restore/pitr-plan.ts';
import { readSegment, type ScratchServer } from '../restore/replay.ts';
import type { BackupStore } from '../store.ts';
import { allChecksums, type Checksums, differences, userSchemas } from './checksums.ts';
import type { DrillRecord } from './history.ts';
import { positionTarget } from './target.ts';

export interface DrillOptions {
  readonly store: BackupStore;
  readonly master: MasterKey;
  readonly job: string;
  readonly logJob: string;
  readonly source: MysqlEndpoint;
  /** The drill's own scratch datadir: removed before and after. */
  readonly into: string;
  readonly startServer: (datadir: string) => Promise<ScratchServer>;
  readonly stopServer: () => Promise<void>;
  /** How long to wait for the archive to reach the source's snapshot position (default 60 s). */
  readonly waitSeconds?: number;
  readonly log?: Logger;
  readonly signal?: AbortSignal;
  readonly onLine?: (line: string) => void;
}

interface Snapshot {
  readonly file: string;
  readonly position: bigint;
  readonly schemas: string[];
  readonly checksums: Checksums;
}

async function sourceSnapshot(ep: MysqlEndpoint): Promise<Snapshot> {
  const conn = await openSession(ep, { apply: false });
  try {
    await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
    const [rows] = await conn.query<mysql.RowDataPacket[]>("SHOW STATUS LIKE 'binlog_snapshot_%'");
    const status = new Map(rows.map((r) => [String(r['Variable_name']).toLowerCase(), String(r['Value'])]));
    const file = status.get('binlog_snapshot_file');
    const position = status.get('binlog_snapshot_position');
    if (!file || position === undefined) {
      throw new TidemarkError('the source reports no binlog snapshot position (is log_bin on?)', { code: 'CONFIG' });
    }
    const schemas = await userSchemas(conn);
    const checksums = await allChecksums(conn, schemas);
    await conn.query('COMMIT');
    return { file, position: BigInt(position), schemas, checksums };
  } finally {
    await conn.end().catch(() => conn.destroy());
  }
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((res) => {
    const t = setTimeout(res, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      res();
    });
  });

/** The GTID position at the snapshot's binlog position, once the archive reaches it. */
async function targetAt(o: DrillOptions, snap: Snapshot): Promise<string> {
  const deadline = Date.now() + (o.waitSeconds ?? 60) * 1000;
  for (;;) {
    const manifests = await storeManifests(o.store, o.log);
    const t = positionTarget(manifests, o.logJob, snap.file, snap.position);
    if (t !== null) {
      let pos = t.before;
      if (t.holding !== null) {
        const l = t.holding.log as NonNullable<typeof t.holding.log>;
        const groups = scanGroups(await readSegment(o.store, o.master, t.holding), l.startPos);
        for (const g of groups) if (g.end <= snap.position) pos = advance(pos, parseGtidPos(g.gtid));
      }
      if (pos.size === 0) {
        throw new TidemarkError(`no transaction is archived before ${snap.file}:${snap.position}`, {
          code: 'BACKUP_PITR_BEFORE',
        });
      }
      return formatGtidPos(pos);
    }
    if (Date.now() >= deadline || o.signal?.aborted) {
      throw new TidemarkError(
        `log job '${o.logJob}' has not archived ${snap.file}:${snap.position} after ${o.waitSeconds ?? 60} s: ` +
          'is the archiver running?',
        { code: 'BACKUP_PITR_AFTER', retriable: true },
      );
    }
    await sleep(1000, o.signal);
  }
}

/** Runs one drill (see the module comment); the result is what the history records. */
export async function runDrill(o: DrillOptions): Promise<DrillRecord> {
  const log = (o.log ?? silentLogger).child({ component: 'backup-drill', job: o.job });
  const say = (line: string): void => {
    log.info(line);
    o.onLine?.(line);
  };
  const startedAt = new Date();
  let backup: string | null = null;
  let gtid: string | null = null;
  let tables = 0;
  let server: ScratchServer | null = null;
  await rm(o.into, { recursive: true, force: true });
  try {
    const snap = await sourceSnapshot(o.source);
    tables = Object.keys(snap.checksums).length;
    say(`source snapshot at ${snap.file}:${snap.position}: ${tables} tables in ${snap.schemas.length} schema(s)`);
    gtid = await targetAt(o, snap);
    const r = await restoreToPoint({
      store: o.store,
      master: o.master,
      job: o.job,
      logJob: o.logJob,
      target: { gtid },
      into: o.into,
      log,
      signal: o.signal,
      onLine: o.onLine,
      startServer: async (dir) => {
        server = await o.startServer(dir);
        return server;
      },
    });
    backup = r.backup;
    const s = server as ScratchServer | null;
    if (s === null) throw new TidemarkError('the restore did not start the scratch server', { code: 'INTERNAL' });
    const conn = await openSession(
      { host: s.host ?? '127.0.0.1', port: s.port ?? 3306, user: s.user, password: s.password },
      { apply: false },
    );
    let restored: Checksums;
    try {
      restored = await allChecksums(conn, snap.schemas);
    } finally {
      await conn.end().catch(() => conn.destroy());
    }
    const mismatches = differences(snap.checksums, restored);
    say(
      mismatches.length === 0
        ? `drill passed: ${tables} tables identical at GTID ${gtid} (backup ${backup})`
        : `DRILL FAILED: ${mismatches.length} of ${tables} tables differ at GTID ${gtid}: ${mismatches.join(', ')}`,
    );
    return {
      job: o.job,
      logJob: o.logJob,
      startedAt,
      endedAt: new Date(),
      ok: mismatches.length === 0,
      backup,
      gtid,
      tables,
      mismatches,
      code: mismatches.length === 0 ? null : 'BACKUP_DRILL_FAILED',
      error: mismatches.length === 0 ? null : `tables differ: ${mismatches.join(', ')}`,
    };
  } catch (err) {
    const code = err instanceof TidemarkError ? err.code : 'INTERNAL';
    const message = err instanceof Error ? err.message : String(err);
    log.error({ err }, 'drill failed');
    say(`DRILL FAILED (${code}): ${message}`);
    return {
      job: o.job,
      logJob: o.logJob,
      startedAt,
      endedAt: new Date(),
      ok: false,
      backup,
      gtid,
      tables,
      mismatches: [],
      code,
      error: message,
    };
  } finally {
    if (server !== null)
      await o.stopServer().catch((err: unknown) => log.warn({ err }, 'stopping the scratch server failed'));
    await rm(o.into, { recursive: true, force: true });
  }
}

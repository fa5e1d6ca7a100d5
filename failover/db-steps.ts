/**
 * The database-facing steps of a takeover, per engine: the seam node/failover-takeover.ts binds the plan's
 * executors (plan.ts) through, so the plan stays the same for every engine. MySQL/MariaDB: fence.ts, promote.ts,
 * promote-hold.ts, lineage.ts (unchanged); PostgreSQL: pg-fence.ts, pg-hold.ts, pg-promote.ts, pg-lineage.ts. Picked by the `kind` of the
 * config's source (the old primary) and of the target being promoted; both must be of one engine.
 *
 * The promotion position differs per engine (a binlog file/offset/GTID, or a slot's LSN); promotion.json stores it
 * as text (StoredPromotionPosition) and `sourcePositionOfStored` turns it into the journal's source position from
 * which capture from the new primary starts.
 */
import type { Logger } from 'pino';
import { TidemarkError } from '../core/errors.ts';
import type { MysqlEndpoint } from '../mysql/session.ts';
import type { PgEndpoint } from '../postgres/session.ts';
import { formatLsn } from '../postgres/lsn.ts';
import { sequencePosition, type SourcePosition } from '../record/position.ts';
import { fenceServer, isWritable } from './fence.ts';
import { type Lineage, readLineage, writeLineage } from './lineage.ts';
import { fencePgServer, isPgWritable, unfencePgServer } from './pg-fence.ts';
import { holdPgPromoted } from './pg-hold.ts';
import { readPgLineage, writePgLineage } from './pg-lineage.ts';
import { type PgPromotionPosition, promotePgServer } from './pg-promote.ts';
import { PgHeartbeatProbe } from './pg-probe.ts';
import type { FenceReport, StepReport } from './plan.ts';
import { type HeartbeatOptions, HeartbeatProbe, type ProbeResult } from './probes.ts';
import { holdPromoted, unfence } from './promote-hold.ts';
import { type PromotionPosition, promoteServer, toSourcePosition } from './promote.ts';

export type AnyPromotionPosition = PromotionPosition | PgPromotionPosition;

/** promotion.json's form of the position (bigints as decimal text). */
export type StoredPromotionPosition =
  | { readonly gtid: string; readonly file: string; readonly offset: string }
  | { readonly engine: 'postgres'; readonly lsn: string; readonly slot: string; readonly publication: string };

/** A server section of the config (source or target) with the failover account; each engine reads its own fields. */
export type FailoverEndpoint = MysqlEndpoint | PgEndpoint;

/** The monitor's and the witness's heartbeat probe of the primary (probes.ts, pg-probe.ts). */
export interface PrimaryProbe {
  probe(signal?: AbortSignal): Promise<ProbeResult>;
  close(): void;
}

export interface FailoverDbSteps {
  readonly engine: 'mysql' | 'postgres';
  heartbeat(ep: FailoverEndpoint, o: HeartbeatOptions): PrimaryProbe;
  fence(ep: FailoverEndpoint, o: { killSessions: boolean; timeoutMs: number; log: Logger }): Promise<FenceReport>;
  /** Whether the server takes writes; null when unreachable. */
  isWritable(ep: FailoverEndpoint, timeoutMs: number): Promise<boolean | null>;
  /** Stops tidemark's applier on the target for good (`admin`: the failover account, ends stuck apply sessions). */
  hold(target: FailoverEndpoint, admin: FailoverEndpoint, source: string, why: string, log: Logger): Promise<void>;
  /** Makes the target writable; `capture`: the slot and publication of the source section (PostgreSQL). */
  promote(
    ep: FailoverEndpoint,
    o: { timeoutMs: number; log: Logger; capture: { slot?: string; publication?: string } },
  ): Promise<StepReport & { position: AnyPromotionPosition }>;
  /** A switchover that did not complete: the fenced primary is writable again (or the log says how). */
  unfence(ep: FailoverEndpoint, account: string, log: Logger): Promise<void>;
  /** The lineage row on the new primary (failover account): written when it takes the primary role. */
  writeLineage(ep: FailoverEndpoint, l: Lineage): Promise<void>;
  /** The lineage row of `source` on a server, or null (failback reads it on the standbys' servers). */
  readLineage(ep: FailoverEndpoint, source: string): Promise<Lineage | null>;
}

const mysqlSteps: FailoverDbSteps = {
  engine: 'mysql',
  heartbeat: (ep, o) => new HeartbeatProbe(ep as MysqlEndpoint, o),
  fence: (ep, o) => fenceServer(ep as MysqlEndpoint, o),
  isWritable: (ep, ms) => isWritable(ep as MysqlEndpoint, ms),
  hold: (t, a, source, why, log) =>
    holdPromoted(t as MysqlEndpoint & { name: string }, a as MysqlEndpoint, source, why, log),
  promote: (ep, o) => promoteServer(ep as MysqlEndpoint, o),
  unfence: (ep, account, log) => unfence(ep as MysqlEndpoint, account, log),
  writeLineage: (ep, l) => writeLineage(ep as MysqlEndpoint, l),
  readLineage: (ep, source) => readLineage(ep as MysqlEndpoint, source),
};

const postgresSteps: FailoverDbSteps = {
  engine: 'postgres',
  heartbeat: (ep, o) => new PgHeartbeatProbe(ep as PgEndpoint, o),
  fence: (ep, o) => fencePgServer(ep as PgEndpoint, o),
  isWritable: (ep, ms) => isPgWritable(ep as PgEndpoint, ms),
  hold: (t, a, source, why, log) => holdPgPromoted(t as PgEndpoint, a as PgEndpoint, source, why, log),
  promote: (ep, o) =>
    promotePgServer(ep as PgEndpoint, {
      slot: o.capture.slot ?? 'tidemark',
      publication: o.capture.publication ?? 'tidemark',
      timeoutMs: o.timeoutMs,
      log: o.log,
    }),
  unfence: async (ep, account, log) => {
    try {
      log.warn(`switchover not completed: ${await unfencePgServer(ep as PgEndpoint, { timeoutMs: 10_000, log })}`);
    } catch (err) {
      log.error(
        { err: String(err) },
        `switchover not completed and the primary could not be made writable again: ALTER SYSTEM RESET default_transaction_read_only; SELECT pg_reload_conf() on it by hand (account ${account})`,
      );
    }
  },
  writeLineage: (ep, l) => writePgLineage(ep as PgEndpoint, l),
  readLineage: (ep, source) => readPgLineage(ep as PgEndpoint, source),
};

/** The steps for a site whose source and promoted target are of these kinds (undefined kind: MySQL). */
export function failoverDbSteps(sourceKind: string | undefined, targetKind: string | undefined): FailoverDbSteps {
  const s = sourceKind ?? 'mysql';
  const t = targetKind ?? 'mysql';
  if (s !== t) {
    throw new TidemarkError(
      `takeover needs the source and the promoted target of one engine (source.kind ${s}, target kind ${t}): a cross-engine replica cannot become the primary`,
      { code: 'NOT_SUPPORTED' },
    );
  }
  if (s === 'mysql') return mysqlSteps;
  if (s === 'postgres') return postgresSteps;
  throw new TidemarkError(`takeover is not implemented for kind ${s}`, { code: 'NOT_SUPPORTED' });
}

export function isPgPosition(p: AnyPromotionPosition | StoredPromotionPosition): p is PgPromotionPosition {
  return 'engine' in p && p.engine === 'postgres';
}

export function storePromotionPosition(p: AnyPromotionPosition): StoredPromotionPosition {
  return isPgPosition(p) ? { ...p, lsn: p.lsn.toString() } : { ...p, offset: p.offset.toString() };
}

/** Where capture from the new primary starts, as the journal's source position. */
export function sourcePositionOfStored(p: StoredPromotionPosition): SourcePosition {
  return 'engine' in p
    ? sequencePosition('postgres', BigInt(p.lsn))
    : toSourcePosition({ ...p, offset: BigInt(p.offset) });
}

/** One line for status and the CLI: "mysql-bin.000003:1234 (gtid 0-1-5)" or "0/3000A28 (slot tidemark)". */
export function formatStoredPosition(p: StoredPromotionPosition): string {
  return 'engine' in p ? `${formatLsn(BigInt(p.lsn))} (slot ${p.slot})` : `${p.file}:${p.offset} (gtid ${p.gtid})`;
}

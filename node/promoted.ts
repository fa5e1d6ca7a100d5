/**
 * After a takeover, the promoted standby's site is the primary: this module turns its mirror journal into the
 * new primary's journal and runs the primary's roles from the same config file.
 *
 *   promoteJournal   the mirror (the old primary's frames at their LSNs) becomes a source journal that continues
 *                    them: cut back to the last unit the promoted target applied (the branch point), given a new
 *                    id that records the branch, and one empty unit appended at the promotion position, from which
 *                    capture resumes (journal/branch.ts). The branch is also written to the new primary's
 *                    database (failover/lineage.ts, pg-lineage.ts through the engine seam db-steps.ts), where the
 *                    old primary's site reads it at failback.
 *                    Idempotent: a crash in between is finished by the next call.
 *   promotedRoles    capture from the promoted server (its address, the source's capture account) into that
 *                    journal (its rollback index is already kept by run: the promoted target's journal), and the
 *                    shippers to the other standbys: they follow from their acknowledged LSN,
 *                    which is at or before the branch point (the takeover chose the most advanced standby), so
 *                    there is no gap and no baseline (repoint).
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Lineage } from '../failover/lineage.ts';
import { failoverDbSteps, sourcePositionOfStored } from '../failover/db-steps.ts';
import type { CommitEntry } from '../record/record.ts';
import { TidemarkError } from '../core/errors.ts';
import { commitAtLsn, promoteMirror } from '../journal/index.ts';
import type { StandbyConfig } from '../config/config-sites.ts';
import { mirrorDir } from '../journal/index.ts';
import { withPassword } from '../core/secret.ts';
import type { Config } from '../config/config.ts';
import { captureLoop } from './capture-loop.ts';
import { asFailoverAccount, failoverOf, promotableTarget } from './failover-spec.ts';
import { type PromotionRecord, readPromotion, writePromotion } from './failover-state.ts';
import { CapGate } from './ship-cap.ts';
import { shipLoop } from './ship-loop.ts';

/** The config as the promoted standby's site sees it: its target is the source, its mirror the journal. */
export function promotedConfig(config: Config, s: StandbyConfig): Config {
  const target = promotableTarget(config, s.name);
  if (!target) throw new TidemarkError(`standby ${s.name} has no target to promote`, { code: 'CONFIG' });
  const { password: _p, ...src } = config.source as Config['source'] & { password?: string };
  const source = withPassword(
    { ...src, host: target.host, port: target.port, ...(target.tls ? { tls: target.tls } : {}) },
    config.source.password,
  );
  return {
    ...config,
    site: s.name,
    source,
    journal: { ...config.journal, dir: mirrorDir(config.source.name, s) },
    standbys: config.standbys.filter((x) => x.name !== s.name),
    targets: [],
  };
}

export interface JournalPromotion {
  readonly lineage: Lineage;
  readonly dir: string;
  /** The lineage row could not be written (a side task: the caller alerts and retries it); null when written. */
  readonly lineageError: unknown;
}

/** Writes the lineage row on the promoted target's server (failover account), in its engine's table. */
export async function writePromotedLineage(config: Config, s: StandbyConfig, lineage: Lineage): Promise<void> {
  const target = promotableTarget(config, s.name);
  if (!target) return;
  const steps = failoverDbSteps((config.source as { kind?: string }).kind, (target as { kind?: string }).kind);
  await steps.writeLineage(asFailoverAccount(failoverOf(config), target), lineage);
}

/** Turns the promoted standby's mirror into the new primary's journal (see the module comment). Idempotent. */
export async function promoteJournal(config: Config, s: StandbyConfig, log: Logger): Promise<JournalPromotion> {
  const p: PromotionRecord | null = await readPromotion(s.journal_dir);
  if (!p?.position || p.appliedLsn === undefined || p.appliedLsn === null) {
    throw new TidemarkError(`${s.name}: no promotion with a position and an applied LSN (failover/promotion.json)`, {
      code: 'FAILOVER_STATE',
    });
  }
  const dir = mirrorDir(config.source.name, s);
  const atLsn = BigInt(p.appliedLsn);
  const position = sourcePositionOfStored(p.position);
  const nowUs = BigInt(Date.now()) * 1000n;
  const r = await promoteMirror(dir, {
    atLsn,
    log,
    marker: (lastSeq: bigint): CommitEntry => ({
      kind: 'commit',
      source: config.source.name,
      seq: lastSeq + 1n,
      txId: `promotion:${s.name}:${p.at}`,
      position,
      commitTimeUs: nowUs,
      captureTimeUs: nowUs,
      rowCount: 0n,
      phase: 'stream',
    }),
  });
  const branch = await commitAtLsn(dir, atLsn);
  if (!branch) {
    throw new TidemarkError(`${dir}: no commit at the branch point LSN ${atLsn} after promoting the journal`, {
      code: 'FAILOVER_STATE',
    });
  }
  const lineage: Lineage = {
    source: config.source.name,
    site: s.name,
    promotedAt: p.at,
    journalId: r.journalId,
    branchOf: r.branch.of,
    branchLsn: r.branch.atLsn,
    branchSeq: branch.seq,
    branchTx: branch.txId,
    branchEpoch: r.branch.epoch,
    markerLsn: r.markerLsn,
    position,
  };
  // A side task: its failure must not stop the promoted site (issue #17); the caller alerts and retries.
  const lineageError = await writePromotedLineage(config, s, lineage).then(
    () => null,
    (err: unknown) => err ?? new Error('lineage write failed'),
  );
  if (!p.journal) {
    await writePromotion(s.journal_dir, {
      ...p,
      journal: {
        id: r.journalId,
        branchOf: r.branch.of,
        branchLsn: r.branch.atLsn.toString(),
        branchSeq: lineage.branchSeq.toString(),
        markerLsn: r.markerLsn.toString(),
      },
    });
  }
  log.warn(
    { journalId: r.journalId, branchOf: r.branch.of, branchLsn: String(atLsn), markerLsn: String(r.markerLsn) },
    `${s.name}'s mirror is the primary journal now: it continues ${r.branch.of} after LSN ${atLsn}`,
  );
  return { lineage, dir, lineageError };
}

/** Capture from the promoted server and ship to the other standbys, until `signal` aborts. */
export async function promotedRoles(
  config: Config,
  s: StandbyConfig,
  log: Logger,
  signal: AbortSignal,
  metrics?: Registry,
): Promise<void> {
  const pc = promotedConfig(config, s);
  const plog = log.child({ role: 'promoted', site: s.name });
  const gate = new CapGate();
  // One part failing stops the others (the caller starts them all again): never two capture loops.
  const inner = new AbortController();
  const sig = AbortSignal.any([signal, inner.signal]);
  const parts: Promise<void>[] = [captureLoop(pc, plog, sig, { gate })];
  for (const o of pc.standbys) parts.push(shipLoop(pc, o, plog, sig, gate, metrics));
  plog.warn(
    {
      source: `${pc.source.host}:${pc.source.port}`,
      journal: pc.journal.dir,
      standbys: pc.standbys.map((x) => x.name),
    },
    `${s.name} runs as the primary: capture from its database, shipping to ${pc.standbys.length} standby(s)`,
  );
  try {
    await Promise.all(parts);
  } catch (err) {
    inner.abort();
    await Promise.allSettled(parts);
    throw err;
  }
}

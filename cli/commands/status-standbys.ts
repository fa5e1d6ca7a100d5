/**
 * The standbys part of `tidemark status`, read at the primary site: the link as the running shipper last
 * published it (node/ship-state.ts), the standby's cursor and pause/cap marks, and the lag computed against
 * the journal head now. A state file older than STALE_MS means no process is shipping to that standby.
 */
import { existsSync } from 'node:fs';
import type { CommitEntry } from '../../record/record.ts';
import { CursorStore } from '../../journal/index.ts';
import { inspectTail } from '../../journal/index.ts';
import { mirrorDir } from '../../journal/index.ts';
import type { Config } from '../../config/config.ts';
import type { LinkState } from '../../ship/link-status.ts';
import { retainedBytes } from '../../node/ship-cap.ts';
import { isPaused, readDropped, readLinkFile, shipCursor } from '../../node/ship-state.ts';

const STALE_MS = 5000;

export interface StandbyStatus {
  readonly name: string;
  readonly transport: string;
  /** Where the primary sends to (tcp, redis: host:port; kafka: brokers). */
  readonly address: string;
  /** The link's state as the shipper published it (ship/link-status.ts LinkState), or down (no shipper running). */
  readonly link: LinkState | 'down';
  readonly paused: boolean;
  readonly acked_lsn: string | null;
  readonly last_ack: string | null;
  readonly lag_records: string | null;
  readonly lag_bytes: number | null;
  readonly lag_seconds: number | null;
  /** ok | alarm (past ship.alarm_at of ship.cap_bytes) | dropped (past the cap; no longer holds the journal) */
  readonly cap: string;
  readonly connects: number | null;
  readonly error: string | null;
  /** Last complete unit in the standby's mirror journal, when it is on this machine (status run at that site). */
  readonly mirror_lsn: string | null;
}

/** `head`: the journal's last commit and `headLsn` its LSN (from one inspectTail by the caller). */
export async function readStandbys(
  config: Config,
  head: CommitEntry | null,
  headLsn: bigint | null,
): Promise<StandbyStatus[]> {
  const dir = config.journal.dir;
  const have = existsSync(dir);
  const cursors = have ? new CursorStore(dir) : null;
  const out: StandbyStatus[] = [];
  for (const s of config.standbys) {
    const [state, paused, dropped, cursor] = have
      ? await Promise.all([
          readLinkFile(dir, s.name),
          isPaused(dir, s.name),
          readDropped(dir, s.name),
          cursors?.get(shipCursor(s.name)) ?? null,
        ])
      : [null, false, null, null];
    const mirror = mirrorDir(config.source.name, s);
    const mirrorLsn = existsSync(mirror) ? (await inspectTail(mirror)).headLsn : null;
    const live = state !== null && Date.now() - Date.parse(state.updatedAt) < STALE_MS;
    const ackedUnit = cursor ?? (state ? BigInt(state.ackedUnitLsn) : dropped ? BigInt(dropped.ackedLsn) : null);
    const lagRecords = headLsn !== null && ackedUnit !== null ? headLsn - ackedUnit : null;
    const ackedTime = state?.ackedCommitTimeUs ? BigInt(state.ackedCommitTimeUs) : null;
    let lagSeconds: number | null = null;
    if (lagRecords !== null && lagRecords <= 0n) lagSeconds = 0;
    else if (head && ackedTime !== null) lagSeconds = Math.max(0, Number(head.commitTimeUs - ackedTime) / 1e6);
    out.push({
      name: s.name,
      transport: s.transport,
      address: s.transport === 'kafka' ? s.brokers.join(',') : s.address,
      link: live ? (state?.state ?? 'down') : paused ? 'paused' : 'down',
      paused,
      acked_lsn: ackedUnit?.toString() ?? null,
      last_ack: state?.lastAckAt ?? null,
      lag_records: lagRecords === null ? null : (lagRecords < 0n ? 0n : lagRecords).toString(),
      lag_bytes:
        have && ackedUnit !== null && lagRecords !== null && lagRecords > 0n ? await retainedBytes(dir, ackedUnit) : 0,
      lag_seconds: lagSeconds,
      cap: dropped ? 'dropped' : (state?.cap ?? 'ok'),
      connects: state?.connects ?? null,
      error: dropped ? `past ship.cap_bytes since ${dropped.at}: ${dropped.reason}` : (state?.lastError ?? null),
      mirror_lsn: mirrorLsn?.toString() ?? null,
    });
  }
  return out;
}

export function standbyLines(standbys: readonly StandbyStatus[]): string[] {
  const lines: string[] = [];
  for (const s of standbys) {
    lines.push(`standby ${s.name} (${s.transport} ${s.address})`);
    lines.push(`  link      ${s.link}${s.paused ? ' (paused: `tidemark ship resume` ends it)' : ''}`);
    lines.push(`  acked     LSN ${s.acked_lsn ?? '-'}${s.last_ack ? `, last ack ${s.last_ack}` : ''}`);
    const secs = s.lag_seconds === null ? '?' : s.lag_seconds.toFixed(3);
    lines.push(`  lag       ${s.lag_records ?? '?'} records, ${s.lag_bytes ?? '?'} bytes, ${secs} s`);
    if (s.mirror_lsn !== null) lines.push(`  mirror    LSN ${s.mirror_lsn} (the mirror journal on this machine)`);
    if (s.cap !== 'ok') lines.push(`  CAP       ${s.cap}`);
    if (s.error) lines.push(`  error     ${s.error}`);
  }
  return lines;
}

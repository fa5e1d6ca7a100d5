/**
 * `tidemark status`: where the source, the journal and each target stand, and the lag between them.
 *   source   the server's current binlog position (SHOW MASTER STATUS) and GTID position
 *   journal  the last captured transaction (seq, source position, commit time); whether capture runs and has
 *            caught up (its read position, node/capture-state.ts, or the last commit reached the source)
 *   targets  the last applied transaction per target (from its position table), lag in records (journal head
 *            seq − applied seq) and seconds (journal head commit time − applied commit time); whether a run
 *            applies to it and a failure or wait its apply loop reported, with the error (status-apply.ts)
 *   standbys per standby (ship/SITES.md): transport, link state and last ack as the running shipper publishes
 *            them (ship-state.ts), lag in journal records (head LSN − acknowledged LSN), bytes (journal the
 *            standby holds) and seconds (head commit time − the acknowledged unit's commit time), pause and cap
 */
import { existsSync } from 'node:fs';
import { formatPosition, positionToJson } from '../../record/position.ts';
import { commitOfTail, CursorStore, inspectTail } from '../../journal/index.ts';
import { type CaptureReach, captureReach } from '../../node/capture-state.ts';
import type { CommandContext } from './context.ts';
import { sourceAdapter, targetAdapter } from '../../config/engines.ts';
import { applyLines, readApplyStatus } from './status-apply.ts';
import { backupScheduleLines, readBackupSchedule } from './status-backups.ts';
import { failoverLines, readFailoverStatus } from './status-failover.ts';
import { readStandbys, standbyLines } from './status-standbys.ts';

export interface StatusOptions extends CommandContext {
  /** Print one JSON document on stdout instead of a human table. */
  readonly json: boolean;
}

const iso = (us: bigint | null | undefined) =>
  us === null || us === undefined ? null : new Date(Number(us / 1000n)).toISOString();

function captureLine(caughtUp: boolean, reach: CaptureReach | null): string {
  const read = reach?.readPosition ? `read up to ${formatPosition(reach.readPosition)}` : '';
  if (!reach?.running) {
    return `${caughtUp ? 'caught up with the source' : 'behind the source'} (capture is not running)`;
  }
  if (!caughtUp) return `behind the source (${read})`;
  return reach.by === 'read-position'
    ? `caught up with the source (${read}; the newest transactions touch no captured table)`
    : 'caught up with the source';
}

/** Prints the status; returns 0 when it could be read. */
export async function statusCommand(o: StatusOptions): Promise<number> {
  const { config } = o;
  const dir = config.journal.dir;
  const [source, tail, targets] = await Promise.all([
    sourceAdapter(config.source).readPosition(config.source),
    existsSync(dir) ? inspectTail(dir) : Promise.resolve(null),
    Promise.all(config.targets.map((t) => targetAdapter(t).readStored(t, config.source.name))),
  ]);
  const applyStatus = await Promise.all(config.targets.map((t) => readApplyStatus(config, t)));
  // One scan of the journal's tail gives both the head commit and (for the standbys) the head LSN.
  const head = tail ? commitOfTail(tail, dir) : null;
  const cursors = existsSync(dir) ? await new CursorStore(dir).list() : [];
  const standbys = await readStandbys(config, head, tail?.headLsn ?? null);
  const failover = await readFailoverStatus(config);
  const backups = await readBackupSchedule(config);
  // Caught up: the journal's last commit, or a running capture's read position, reached the source's position
  // (capture-state.ts: the newest transactions may touch only tables outside the include set).
  const reach = source.position ? await captureReach(dir, source.position, head) : null;
  const captureCaughtUp = reach && (head || reach.running) ? reach.caughtUp : null;
  const doc = {
    source: {
      name: config.source.name,
      address: `${config.source.host}:${config.source.port}`,
      position: source.position ? positionToJson(source.position) : null,
      error: source.error ?? null,
    },
    journal: {
      dir,
      head: head
        ? {
            seq: head.seq.toString(),
            position: positionToJson(head.position),
            phase: head.phase,
            commit_time: iso(head.commitTimeUs),
          }
        : null,
      capture_caught_up: captureCaughtUp,
      capture_running: reach?.running ?? null,
      capture_read_position: reach?.readPosition ? positionToJson(reach.readPosition) : null,
      cursors: cursors.map((c) => ({ name: c.name, acked_lsn: c.lsn.toString() })),
    },
    targets: targets.map((t, i) => {
      const apply = applyStatus[i] ?? null;
      const st = t.stored?.state ?? null;
      const lagRecords = head && st ? head.seq - st.seq : head ? head.seq : null;
      const lagSeconds =
        head && st?.commitTimeUs !== null && st?.commitTimeUs !== undefined
          ? Number(head.commitTimeUs - st.commitTimeUs) / 1e6
          : null;
      return {
        name: t.name,
        applied: st
          ? {
              seq: st.seq.toString(),
              journal_lsn: st.lsn.toString(),
              position: st.position ? positionToJson(st.position) : null,
              phase: st.phase,
              commit_time: iso(st.commitTimeUs),
            }
          : null,
        lag_records: lagRecords === null ? null : lagRecords.toString(),
        lag_seconds: lagSeconds === null ? null : Math.max(0, lagSeconds),
        site: config.targets.find((x) => x.name === t.name)?.site ?? config.site,
        hold: t.stored?.hold ?? null,
        // The target unreachable now, else the failure its apply loop reported (apply.state 'failed').
        error: t.error ?? (apply?.state === 'failed' ? apply.error : null),
        unreachable: t.error !== undefined,
        apply,
      };
    }),
    standbys,
    failover,
    backups,
  };
  if (o.json) {
    o.stdout.write(`${JSON.stringify(doc)}\n`);
    return 0;
  }
  const lines: string[] = [];
  lines.push(`source  ${doc.source.name} ${doc.source.address}`);
  lines.push(
    source.position
      ? `  at        ${formatPosition(source.position)}`
      : `  unreachable: ${source.error ?? 'unknown error'}`,
  );
  lines.push(`journal ${dir}`);
  lines.push(
    head
      ? `  head      seq ${head.seq} at ${formatPosition(head.position)}, committed ${doc.journal.head?.commit_time} (${head.phase})`
      : '  empty',
  );
  if (captureCaughtUp !== null) lines.push(`  capture   ${captureLine(captureCaughtUp, reach)}`);
  for (const t of doc.targets) {
    lines.push(`target  ${t.name}`);
    if (t.unreachable) lines.push(`  unreachable: ${t.error}`);
    else if (!t.applied) lines.push('  nothing applied yet');
    else {
      lines.push(`  applied   seq ${t.applied.seq}, committed ${t.applied.commit_time} (${t.applied.phase})`);
      // Binlog commit times have whole seconds: records behind within one second are not "0.000 s" behind.
      const secs =
        t.lag_records !== '0' && t.lag_seconds === 0
          ? 'under 1 s of source commit time (whole-second binlog times)'
          : `${t.lag_seconds?.toFixed(3) ?? '?'} s`;
      lines.push(`  lag       ${t.lag_records} records, ${secs}`);
    }
    if (t.apply) lines.push(...applyLines(t.apply));
    if (t.hold) lines.push(`  HELD      ${t.hold} (apply paused; \`tidemark forward --to-head\` releases it)`);
  }
  lines.push(...standbyLines(standbys), ...failoverLines(failover), ...backupScheduleLines(backups));
  o.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

/**
 * Takeover benchmark (issue #5): what the application sees when its primary dies, on the namespace lab of the
 * acceptance tests (test/fixtures/takeover.ts: primary, standby, witness and client hosts, a VIP; root only).
 *
 *   rto_s            `runs` times: a fresh round (baseline, caught up, the client writing through the VIP every
 *                    50 ms with 500 ms bounds), then the primary's mariadbd killed; RTO = the start of the first
 *                    failed write → the end of the first successful write on the new primary. p50 and max.
 *   takeover_ms      kill → the takeover's end (promotion.json `at`), per run: detection (fail_after_ms of
 *                    failures seen by the standby and the witness), fence hook, drain, promote, VIP; the VIP step
 *                    lasts its gratuitous ARPs (1 s apart), so clients often write before the takeover has ended
 *   The monitor runs at its documented defaults here (the tests use their own thresholds).
 *   rto_breakdown_ms  per kill run, where the RTO goes (issue #15), from the client's first failed write: until
 *                    the standby's and the witness's monitors failed the primary (the decision's reason says
 *                    since when), until the decision (the fence's start), fence, drain, promote (promotion.json's
 *                    timeline), and from the VIP's move to the client's first successful write on the new primary
 *   lost_acked_writes  writes the old primary acknowledged that the new one lacks, per run (shipping is
 *                    asynchronous: the tail not yet captured when mariadbd died)
 *   false_takeovers  takeovers during `partition_s` seconds of primary↔standby cut while the witness still sees the
 *                    primary (must be 0)
 *   scenarios        (issue #17) per fault, `runs` rounds each: killed (mariadbd SIGKILLed), isolated (the primary's
 *                    host cut off from everyone), partial (cut from the standby and the witness, the client still
 *                    reaching it); RTO p50/max, takeover time, and the old primary's last acknowledged write
 *                    after the fault (client side) and its last row (server side): its write window. The fence
 *                    hook is the check-only one (exit 0 only if down or read_only at that instant).
 *   switchover_write_pause_s  a last round: `tidemark switchover --to dr1` while the client writes; the client's
 *                    pause (end of its last write on the old primary → end of its first on the new one), with
 *                    the fence → promotion time switchover printed and whether every acknowledged write arrived
 *
 * Uses hosts taprim/tastby/tawit/tacli (10.231.0.40-43), VIP 10.231.0.140, MariaDB ta_primary/ta_standby: do not
 * run it while test/it/failover-{takeover,partitions}.it.test.ts run.
 */
import { loadavg } from 'node:os';
import { netnsUnavailable } from '../test/fixtures/netns.ts';
import { cutScenario } from '../test/fixtures/takeover-faults.ts';
import {
  type KillResult,
  killScenario,
  median,
  partitionScenario,
  switchoverScenario,
  TakeoverLab,
} from '../test/fixtures/takeover.ts';
import { failoverSchema } from '../failover/config.ts';
import { defaultMarginMs } from '../failover/timeline.ts';

interface ScenarioFigures {
  rto_s: { runs: number[]; p50: number | null; max: number | null };
  takeover_ms: (number | null)[];
  /** Fault → the end of the last write the old primary acknowledged to the client (null: none after the fault). */
  old_primary_last_ack_ms: (number | null)[];
  /** Fault → the old primary's last row (server time): its write window. */
  old_primary_write_window_ms: (number | null)[];
  /** Old-primary rows committed after the new primary's first (must be 0). */
  old_rows_after_first_new: number[];
  no_takeover: number;
}

const emptyFigures = (): ScenarioFigures => ({
  rto_s: { runs: [], p50: null, max: null },
  takeover_ms: [],
  old_primary_last_ack_ms: [],
  old_primary_write_window_ms: [],
  old_rows_after_first_new: [],
  no_takeover: 0,
});

export interface TakeoverBenchOptions {
  /** Kill runs (each a fresh takeover). */
  runs: number;
  /** Seconds of primary↔standby partition for false_takeovers. */
  partitionS: number;
  log: (s: string) => void;
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;

/** Where one kill run's RTO went, in ms (null: not in the record). */
export function rtoBreakdown(r: KillResult): Record<string, number | null> | null {
  const p = r.promotion;
  const rto = r.rto;
  if (!p || !rto) return null;
  const from = rto.firstFailure.t;
  const step = (name: string) => p.timeline.find((e) => e.step === name);
  const since = (who: string) => {
    const m = new RegExp(`for ${who} since (\\S+?Z)`).exec(p.reason);
    return m?.[1] ? Date.parse(m[1]) - from : null;
  };
  const took = (name: string) => {
    const e = step(name);
    return e?.startedAt != null && e.endedAt != null ? e.endedAt - e.startedAt : null;
  };
  const decided = step('fence-db')?.startedAt ?? null;
  const vip = step('move-vip')?.startedAt ?? null;
  return {
    standby_failed: since('this standby'),
    witness_failed: since('the witness'),
    decision: decided === null ? null : decided - from,
    fence: decided === null ? null : (step('drain')?.startedAt ?? decided) - decided,
    drain: took('drain'),
    promote: took('promote'),
    vip_to_first_write: vip === null ? null : rto.firstSuccess.end - vip,
    rto: rto.firstSuccess.end - from,
  };
}

/** The monitor's documented defaults, read from the config schema (what the bench runs with). */
function documentedSettings(): string {
  const d = failoverSchema.parse({ account: { user: 'u', password: 'p' } });
  const m = d.monitor;
  const margin = defaultMarginMs({
    maxProbeIntervalMs: d.calendar.default_interval_ms,
    probeTimeoutMs: m.probe_timeout_ms,
  });
  return (
    `the documented defaults (failover/config.ts): fail_after_ms ${m.fail_after_ms}, fail_after_count ` +
    `${m.fail_after_count}, probe interval ${d.calendar.default_interval_ms} ms (${m.suspect_interval_ms} ms while ` +
    `suspect), probe_timeout_ms ${m.probe_timeout_ms}, fence margin ${margin} ms, confirm_for_ms ` +
    `${d.fence.confirm_for_ms}; garp_count 3; a check-only fence hook; least-privilege accounts`
  );
}

export async function benchTakeover(o: TakeoverBenchOptions) {
  const why = netnsUnavailable();
  if (why) throw new Error(`the takeover benchmark needs network namespaces (root, iproute2): ${why}`);
  const wall0 = performance.now();
  const load0 = loadavg()[0] ?? -1;
  // The captured heartbeat table lets the last round be a switchover (its zero-loss marker travels through it).
  // The monitor at its documented defaults (failover/config.ts): the goal is stated for those.
  const lab = new TakeoverLab({ heartbeatTable: 'ha.heartbeat', documentedDefaults: true });
  let switchover: Awaited<ReturnType<typeof switchoverScenario>> | null = null;
  const rtos: number[] = [];
  const takeoverMs: (number | null)[] = [];
  const lost: number[] = [];
  const failures: number[] = [];
  const breakdowns: (Record<string, number | null> | null)[] = [];
  let falseTakeovers = 0;
  const scenarios: Record<'killed' | 'isolated' | 'partial', ScenarioFigures> = {
    killed: emptyFigures(),
    isolated: emptyFigures(),
    partial: emptyFigures(),
  };
  try {
    o.log('lab: hosts, MariaDB primary + standby, certificates');
    await lab.setup();
    await lab.startRound();
    o.log(`partition: primary↔standby blocked for ${o.partitionS} s, the witness still sees the primary`);
    const p = await partitionScenario(lab, o.partitionS * 1000);
    falseTakeovers += p.promoted || p.takeoverLines.length > 0 ? 1 : 0;
    o.log(`partition: ${p.promoted ? 'TAKEN OVER' : 'no takeover'} (${p.statusDecision})`);
    for (let run = 1; run <= o.runs; run++) {
      await lab.resetRound();
      await lab.startRound();
      const r = await killScenario(lab);
      if (!r.rto) throw new Error(`run ${run}: no write succeeded on a new primary\n${lab.standby.tail(12)}`);
      rtos.push(r3(r.rto.seconds));
      takeoverMs.push(r.takeoverMs);
      lost.push(r.lostAcked);
      failures.push(r.rto.failures);
      breakdowns.push(rtoBreakdown(r));
      o.log(`run ${run}/${o.runs}: RTO ${r3(r.rto.seconds)} s, takeover ${r.takeoverMs} ms, lost ${r.lostAcked}`);
    }
    for (const [name, mode] of [
      ['isolated', 'isolate'],
      ['partial', 'partial'],
    ] as const) {
      for (let run = 1; run <= o.runs; run++) {
        await lab.resetRound();
        await lab.startRound();
        const r = await cutScenario(lab, mode);
        r.end();
        const fig = scenarios[name];
        if (!r.promotion || !r.rto) {
          fig.no_takeover++;
          o.log(`${name} ${run}/${o.runs}: no takeover; the standby's last lines:\n${lab.standby.tail(25)}`);
        } else fig.rto_s.runs.push(r3(r.rto.seconds));
        fig.takeover_ms.push(r.takeoverMs);
        fig.old_primary_last_ack_ms.push(r.lastOldAckMs);
        fig.old_primary_write_window_ms.push(r.oldWriteWindowMs);
        fig.old_rows_after_first_new.push(r.oldRowsAfterFirstNew);
        o.log(
          `${name} ${run}/${o.runs}: RTO ${r.rto ? r3(r.rto.seconds) : '-'} s, takeover ${r.takeoverMs} ms, ` +
            `old primary's last ack ${r.lastOldAckMs} ms / last row ${r.oldWriteWindowMs} ms after the fault`,
        );
      }
    }
    await lab.resetRound();
    await lab.startRound();
    switchover = await switchoverScenario(lab);
    if (switchover.code !== 0) throw new Error(`switchover failed:\n${switchover.output}`);
    o.log(`switchover: client pause ${switchover.clientPauseS} s, fence → promotion ${switchover.pauseS} s`);
  } finally {
    await lab.teardown();
  }
  scenarios.killed.rto_s.runs = [...rtos];
  scenarios.killed.takeover_ms = [...takeoverMs];
  for (const fig of Object.values(scenarios)) {
    const xs = fig.rto_s.runs;
    fig.rto_s.p50 = xs.length > 0 ? r3(median(xs)) : null;
    fig.rto_s.max = xs.length > 0 ? Math.max(...xs) : null;
  }
  return {
    benchmark: 'takeover',
    scenarios,
    rto_s: { runs: rtos, p50: r3(median(rtos)), max: Math.max(...rtos) },
    switchover_write_pause_s: switchover?.clientPauseS ?? null,
    switchover: switchover && {
      fence_to_promotion_s: switchover.pauseS,
      acked_writes: switchover.acked,
      all_acked_on_new_primary:
        switchover.oldRows.n >= switchover.acked &&
        switchover.newRows.n === switchover.oldRows.n &&
        switchover.newRows.sum === switchover.oldRows.sum,
    },
    false_takeovers: falseTakeovers,
    takeover_ms: takeoverMs,
    rto_breakdown_ms: breakdowns,
    failed_writes: failures,
    lost_acked_writes: lost,
    settings: documentedSettings(),
    partition_s: o.partitionS,
    wall_s: r3((performance.now() - wall0) / 1000),
    load_1m_before: load0,
  };
}

import { afterEach, describe, expect, it } from 'vitest';
import { type Candidate, type DecideInput, decideAutomatic, EMPTY_HISTORY } from '../failover/decide.ts';
import { startWitness, type Witness } from '../failover/witness.ts';
import { type FetchedWitnessView, fetchWitnessView, viewOf } from '../failover/witness-client.ts';
import { captureLog } from '../test/fixtures/ship-link.ts';
import { TEST_WITNESS_CALENDAR, testWitnessMonitor } from '../test/fixtures/witness.ts';
import type { Config, ResolvedFailover } from '../config/config.ts';
import { claimTakeover, electionInput, reportSelf } from './failover-report.ts';

const T = Date.parse('2026-03-02T10:00:00Z');
const config = {
  standbys: [{ name: 'dr1' }, { name: 'dr2' }, { name: 'dr3' }, { name: 'kafka1' }],
  targets: [
    { name: 't1', site: 'dr1' },
    { name: 't2', site: 'dr2' },
    { name: 't3', site: 'dr3' },
  ],
} as unknown as Config;
const failover = (address = '127.0.0.1:1') =>
  ({
    witness: { address, max_age_ms: 5000 },
    monitor: { probe_timeout_ms: 2000 },
    election: { priority: { dr3: 7 }, unknown_standbys: 'wait', agree_for_ms: 0 },
  }) as unknown as ResolvedFailover;

const cand = (name: string, received: bigint | null): Candidate => ({
  name,
  priority: 0,
  position: received === null ? null : { received, applied: received },
  eligible: true,
});
const entry = (name: string, received: bigint, age_ms: number, promoted: string | null = null) => ({
  name,
  priority: 0,
  position: { received: received.toString(), applied: received.toString() },
  eligible: true,
  promoted,
  age_ms,
});
function view(candidates: ReturnType<typeof entry>[]): FetchedWitnessView {
  return viewOf({ version: 1, state: 'failed', since: T - 9000, now: T, probes: [], candidates }, T);
}

describe('electionInput', () => {
  it('self, then every other standby with a promotable target: fresh from the view, else unknown', () => {
    const v = view([entry('dr2', 90n, 5000), entry('dr3', 200n, 5001), entry('kafka1', 999n, 0), entry('x', 1n, 0)]);
    const r = electionInput(config, failover(), cand('dr1', 100n), v);
    expect(r.promoted).toBeNull();
    expect(r.candidates).toEqual([
      cand('dr1', 100n),
      cand('dr2', 90n),
      { name: 'dr3', priority: 7, position: null, eligible: true }, // too old: unknown, the configured priority
    ]);
  });

  it('no view: every other standby is unknown', () => {
    const r = electionInput(config, failover(), cand('dr1', 100n), null);
    expect(r.candidates.map((c) => [c.name, c.position])).toEqual([
      ['dr1', { received: 100n, applied: 100n }],
      ['dr2', null],
      ['dr3', null],
    ]);
  });

  it('another standby reporting a promotion, however old; its own entry never counts', () => {
    const at = '2026-03-02T09:00:00.000Z';
    const v = view([entry('dr1', 1n, 0, at), entry('dr3', 200n, 3_600_000, at)]);
    expect(electionInput(config, failover(), cand('dr1', 100n), v).promoted).toEqual({ name: 'dr3', at });
  });
});

describe('with a witness: two standbys report, then decide', () => {
  const running: { w: Witness; ac: AbortController }[] = [];
  afterEach(async () => {
    for (const r of running.splice(0)) {
      r.ac.abort();
      await r.w.finished;
    }
  });
  async function witness(): Promise<string> {
    const ac = new AbortController();
    const w = await startWitness({
      primary: { host: '127.0.0.1', port: 1, user: 'hb' },
      monitor: testWitnessMonitor({ fail_after_count: 1, recover_after: 1, suspect_interval_ms: 20 }),
      calendar: TEST_WITNESS_CALENDAR,
      listen: '127.0.0.1:0',
      tls: 'plaintext',
      log: captureLog().log,
      signal: ac.signal,
      runProbe: async () => ({ ok: false, error: 'primary gone' }),
    });
    running.push({ w, ac });
    return `127.0.0.1:${w.address().port}`;
  }
  const two = { standbys: [{ name: 'dr1' }, { name: 'dr2' }], targets: (config as { targets: unknown }).targets };

  it('the more advanced takes over, the other defers; a second claim is refused', async () => {
    const f = failover(await witness());
    const cfg = two as unknown as Config;
    const log = captureLog();
    const dr1 = cand('dr1', 100n);
    const dr2 = cand('dr2', 120n);
    expect(await reportSelf(f, 'plaintext', dr1, null, log.log)).toBe(true);
    expect(await reportSelf(f, 'plaintext', dr2, null, log.log)).toBe(true);
    const decide = async (self: Candidate) => {
      let v = await fetchWitnessView(f.witness?.address ?? '', { tls: 'plaintext', timeoutMs: 2000 });
      for (let i = 0; v.state !== 'failed' && i < 100; i++) {
        await new Promise((r) => setTimeout(r, 20));
        v = await fetchWitnessView(f.witness?.address ?? '', { tls: 'plaintext', timeoutMs: 2000 });
      }
      const now = v.receivedAt;
      const input: DecideInput = {
        now,
        self: self.name,
        local: { state: 'failed', since: now - 10_000 },
        witness: v,
        ...electionInput(cfg, f, self, v),
        history: EMPTY_HISTORY,
        policy: {
          mode: 'automatic',
          min_interval_ms: 0,
          witness_max_age_ms: 5000,
          agree_for_ms: 0,
          unknown_standbys: 'wait',
        },
      };
      return decideAutomatic(input);
    };
    expect(await decide(dr1)).toMatchObject({ action: 'defer', winner: 'dr2' });
    expect(await decide(dr2)).toMatchObject({ action: 'takeover', winner: 'dr2' });

    // Both decided to take over (e.g. from views of different moments): the witness grants one claim only.
    expect(await claimTakeover(f, 'plaintext', dr2, log.log)).toBeNull();
    expect(await claimTakeover(f, 'plaintext', dr1, log.log)).toMatch(
      /^the witness did not grant the promotion: .*HTTP 409.*dr2 was promoted at \S+: it is the primary/,
    );
    expect(await decide(dr1)).toMatchObject({ action: 'none', code: 'already-promoted' });
  });

  it('a witness that does not answer: the report fails quietly, logged once', async () => {
    const f = failover('127.0.0.1:1');
    const log = captureLog();
    expect(await reportSelf(f, 'plaintext', cand('dr1', 1n), null, log.log)).toBe(false);
    expect(await reportSelf(f, 'plaintext', cand('dr1', 1n), null, log.log)).toBe(false);
    const msgs = log.lines.map((l) => [l['level'], l['msg']]);
    expect(msgs).toEqual([
      [40, 'witness: reporting this standby failed'],
      [20, 'witness: reporting this standby failed (again)'],
    ]);
    expect(await claimTakeover(f, 'plaintext', cand('dr1', 1n), log.log)).toMatch(/connection refused/);
  });
});

/**
 * The primary's end of a standby without databases: a real journal (fixtures/ship-mirror Source), the ship loop
 * of a tcp standby that is down, then comes up (the receive loop, plaintext). What ship.cap_bytes does at
 * alarm_at and at the cap, for both at_cap settings; pause and resume; the state `tidemark status` reads.
 */
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Source } from '../test/fixtures/ship-mirror.ts';
import { captureLog, cleanupsAfterEach } from '../test/fixtures/ship-link.ts';
import { readFrames } from '../test/fixtures/ship-mirror.ts';
import { CursorStore } from '../journal/cursors.ts';
import { applyRetention } from '../journal/retention.ts';
import { parseConfig } from '../config/config.ts';
import type { Config } from '../config/config.ts';
import { receiveLoop } from './receive-loop.ts';
import { CapGate } from './ship-cap.ts';
import { shipLoop } from './ship-loop.ts';
import { readDropped, readLinkFile, setPaused, shipCursor } from './ship-state.ts';

const cleanups = cleanupsAfterEach();

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function setup(atCap: 'drop-standby' | 'stop-capture') {
  const src = await Source.create(128 << 10);
  const port = await freePort();
  const config: Config = parseConfig(
    `source: {name: s1, user: u, include: [a.*]}
journal: {dir: ${JSON.stringify(src.dir)}}
ship: {plaintext: true, heartbeat_ms: 200, cap_bytes: 1048576, alarm_at: 0.5, at_cap: ${atCap}}
standbys:
  - {name: dr1, address: "127.0.0.1:${port}", journal_dir: ${JSON.stringify(join(src.dir, 'dr1'))}}
targets: [{name: r1, user: u, site: dr1}]
`,
    join(src.dir, 'tidemark.yaml'),
  );
  const ac = new AbortController();
  const { log, lines, text } = captureLog();
  const gate = new CapGate();
  const loop = shipLoop(config, config.standbys[0]!, log, ac.signal, gate);
  cleanups.push(async () => {
    ac.abort();
    await loop;
    await src.close();
  });
  const state = () => readLinkFile(src.dir, 'dr1');
  return { src, config, ac, log, lines, text, gate, state };
}

async function waitFor<T>(what: string, f: () => Promise<T | null | false | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** ~100 kB per unit: units of one big rows frame. */
const BIG = { bigEvery: 1, bigFrames: 1, bigBytes: 100_000 };

function startStandby(s: { config: Config; log: import('pino').Logger }) {
  const ac = new AbortController();
  const loop = receiveLoop(s.config, s.config.standbys[0]!, s.log, ac.signal);
  cleanups.push(async () => {
    ac.abort();
    await loop;
  });
}

describe('ship loop: the cap', () => {
  it('drop-standby: alarm at alarm_at, cursor dropped at the cap, held again once the standby caught up', async () => {
    const s = await setup('drop-standby');
    const cursors = new CursorStore(s.src.dir);
    await waitFor('the cursor registered', async () => (await cursors.get(shipCursor('dr1'))) === 0n);
    await s.src.writeUnits(6, BIG); // ~600 kB: past the alarm (512 KiB), under the cap
    const alarm = await waitFor('the alarm', async () => ((await s.state())?.cap === 'alarm' ? s.state() : null));
    expect(alarm?.retainedBytes).toBeGreaterThan(512 << 10);
    expect(s.text()).toMatch(/standby dr1 holds [\d.]+ MiB of journal, \d+ % of ship\.cap_bytes/);
    expect(await cursors.get(shipCursor('dr1'))).toBe(0n);
    expect(await readDropped(s.src.dir, 'dr1')).toBeNull();

    await s.src.writeUnits(6, BIG); // ~1.2 MB: past the cap
    const dropped = await waitFor('the drop', () => readDropped(s.src.dir, 'dr1'));
    expect(dropped.reason).toMatch(/over ship\.cap_bytes 1048576/);
    expect(await cursors.get(shipCursor('dr1'))).toBeNull(); // retention is no longer held by dr1
    expect(s.text()).toMatch(/standby dr1 reached ship\.cap_bytes: it no longer holds the journal/);
    expect(await waitFor('state dropped', async () => ((await s.state())?.cap === 'dropped' ? true : null))).toBe(true);
    expect(s.gate.blocked()).toBeNull(); // drop-standby never stops capture

    // The standby comes up: it gets everything (the journal still has it), and holds the journal again.
    startStandby(s);
    const head = s.src.headLsn;
    await waitFor('dr1 caught up', async () => {
      const st = await s.state();
      return st && BigInt(st.ackedUnitLsn) === head ? st : null;
    });
    await waitFor('the mark gone', async () => (await readDropped(s.src.dir, 'dr1')) === null);
    expect(await cursors.get(shipCursor('dr1'))).toBe(head);
    const mirror = await readFrames(join(s.src.dir, 'dr1', 's1'));
    expect(mirror.length).toBe(Number(head));
    expect(s.text()).toMatch(/below the alarm level again: it holds the journal again/);
  }, 60_000);

  it('stop-capture: the gate holds capture at the cap and lets go once the standby is back under the alarm', async () => {
    const s = await setup('stop-capture');
    await s.src.writeUnits(12, BIG);
    await waitFor('the gate', async () => s.gate.blocked());
    expect(s.gate.blocked()).toMatch(/standby dr1 holds [\d.]+ MiB of journal, at ship\.cap_bytes/);
    expect(await readDropped(s.src.dir, 'dr1')).toBeNull();
    startStandby(s);
    await waitFor('the gate released', async () => s.gate.blocked() === null);
    expect(s.text()).toMatch(/capture pauses until it is below the alarm level/);
  }, 60_000);
});

describe('ship loop: a dropped standby whose journal is gone', () => {
  it('is refused with "needs a rebaseline", never shipped a gap', async () => {
    const s = await setup('drop-standby');
    await s.src.writeUnits(12, BIG);
    await waitFor('the drop', () => readDropped(s.src.dir, 'dr1'));
    // Retention, held only by an applier at the head now, removes what dr1 still needed.
    const cursors = new CursorStore(s.src.dir);
    await cursors.set('apply:r1', s.src.headLsn);
    const r = await applyRetention({ dir: s.src.dir, keepHours: 0 });
    expect(r.deleted.length).toBeGreaterThan(0);
    startStandby(s);
    const st = await waitFor('the refusal', async () => {
      const x = await s.state();
      return x?.lastError?.includes('rebaseline') ? x : null;
    });
    expect(st.lastError).toMatch(/LSN 1 is no longer retained .*needs a rebaseline/);
    expect(st.cap).toBe('dropped');
    expect(existsSync(join(s.src.dir, 'dr1', 's1')) ? (await readFrames(join(s.src.dir, 'dr1', 's1'))).length : 0).toBe(
      0,
    );
  }, 60_000);
});

describe('ship loop: pause and resume', () => {
  it('stops shipping while paused (cursor kept) and continues on resume', async () => {
    const s = await setup('drop-standby');
    startStandby(s);
    await s.src.writeUnits(3);
    const first = s.src.headLsn;
    await waitFor('shipped', async () => ((await s.state())?.ackedUnitLsn === String(first) ? true : null));
    await setPaused(s.src.dir, 'dr1', true);
    await waitFor('paused', async () => ((await s.state())?.state === 'paused' ? true : null));
    await s.src.writeUnits(3);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await s.state())?.ackedUnitLsn).toBe(String(first));
    expect(await new CursorStore(s.src.dir).get(shipCursor('dr1'))).toBe(first);
    await setPaused(s.src.dir, 'dr1', false);
    const head = s.src.headLsn;
    await waitFor('resumed and caught up', async () =>
      (await s.state())?.ackedUnitLsn === String(head) ? true : null,
    );
    expect(existsSync(join(s.src.dir, 'dr1', 's1'))).toBe(true);
  }, 60_000);
});

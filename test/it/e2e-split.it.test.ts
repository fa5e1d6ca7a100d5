/**
 * Capture and apply as two separate processes sharing only the journal directory (`run --only capture` and
 * `run --only apply`), both running at once under a workload, each killed and restarted once in the middle.
 * Afterwards the replica holds the source's last transaction, verify says equal, and the apply cursor in the
 * journal acknowledges what the replica holds.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runWorkload, SHOP_SCHEMA } from '../../bench/workload.ts';
import { CursorStore } from '../../journal/index.ts';
import { admin } from '../fixtures/mariadb.ts';
import {
  createTopology,
  exited,
  runCli,
  startRun,
  type Topology,
  waitCaughtUpPastBaseline,
  stopTopology,
} from '../fixtures/topology.ts';

const NAME = 'e2esplit';
let t: Topology;

beforeAll(async () => {
  t = await createTopology({ name: NAME, sourcePort: 3491, replicaPort: 3492, include: ['shop.*'] });
  const c = await admin(t.sourcePort);
  for (const s of SHOP_SCHEMA('shop')) await c.query(s);
  await c.end();
  await runWorkload(() => admin(t.sourcePort), { db: 'shop', seed: 11, transactions: 300, workers: 2 });
});

afterAll(async () => {
  await stopTopology(null, [], NAME);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('capture and apply run as separate processes on one journal directory', async () => {
  const ac = new AbortController();
  const workload = runWorkload(() => admin(t.sourcePort), { db: 'shop', seed: 12, workers: 2, signal: ac.signal });
  let capture = startRun(t.config, ['--only', 'capture']);
  let apply = startRun(t.config, ['--only', 'apply']);
  try {
    await sleep(2500);
    // Kill each half once while the other keeps running.
    capture.kill('SIGKILL');
    await exited(capture);
    await sleep(800);
    capture = startRun(t.config, ['--only', 'capture']);
    await sleep(1500);
    apply.kill('SIGKILL');
    await exited(apply);
    await sleep(800);
    apply = startRun(t.config, ['--only', 'apply']);
    await sleep(1500);
    expect(capture.exitCode, 'capture process still running').toBeNull();
    expect(apply.exitCode, 'apply process still running').toBeNull();
  } finally {
    ac.abort();
    await workload;
  }
  try {
    const p = await waitCaughtUpPastBaseline(t, 60_000);
    expect(p.replica).toBe(p.source);
    const v = await runCli(['verify', '-c', t.config, '--json']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(JSON.parse(v.stdout.trim()).equal).toBe(true);
  } finally {
    capture.kill('SIGTERM');
    apply.kill('SIGTERM');
    await Promise.all([exited(capture), exited(apply)]);
  }
  // A clean stop acknowledges the replica's position to the journal cursor (retention relies on it).
  const r = await admin(t.replicaPort);
  const [rows] = (await r.query(
    'SELECT CAST(journal_lsn AS CHAR) AS lsn FROM tidemark.applied_position',
  )) as unknown as [{ lsn: string }[]];
  await r.end();
  const cursor = await new CursorStore(`${t.dir}/journal`).get('apply:replica');
  expect(cursor).toBe(BigInt(rows[0]!.lsn));
}, 180_000);

import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TidemarkError } from '../core/errors.ts';
import { loadSiteTls, makeCerts, type TlsMaterial } from '../ship/tcp/certs.ts';
import { captureLog } from '../test/fixtures/ship-link.ts';
import { TEST_WITNESS_CALENDAR, testWitnessMonitor } from '../test/fixtures/witness.ts';
import type { Candidate } from './decide.ts';
import { startWitness, type Witness, type WitnessOptions } from './witness.ts';
import { type CandidateToReport, fetchWitnessView, reportCandidate } from './witness-client.ts';

let root: string;
let witnessTls: TlsMaterial;
let dr1: TlsMaterial;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tidemark-witness-routes-'));
  await makeCerts({ dir: root, ca: 'ca', sites: ['witness', 'dr1'] });
  witnessTls = await loadSiteTls(root, 'witness');
  dr1 = await loadSiteTls(root, 'dr1');
}, 60_000);
afterAll(() => rm(root, { recursive: true, force: true }));

const running: { w: Witness; ac: AbortController }[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) {
    r.ac.abort();
    await r.w.finished;
  }
});

async function start(over: Partial<WitnessOptions> = {}) {
  const log = captureLog();
  const ac = new AbortController();
  const ep = { host: '127.0.0.1', port: 1, user: 'hb' };
  const w = await startWitness({
    primary: ep,
    monitor: testWitnessMonitor(),
    calendar: TEST_WITNESS_CALENDAR,
    listen: '127.0.0.1:0',
    tls: witnessTls,
    log: log.log,
    signal: ac.signal,
    runProbe: async () => ({ ok: true, latencyMs: 1 }),
    ...over,
  });
  running.push({ w, ac });
  return { w, log, address: `127.0.0.1:${w.address().port}` };
}

const cand = (name: string, received: bigint, over: Partial<CandidateToReport> = {}): CandidateToReport => ({
  name,
  priority: 0,
  position: { received, applied: received - 1n },
  eligible: true,
  promoted: null,
  ...over,
});

async function refusal(p: Promise<unknown>): Promise<TidemarkError> {
  const err = await p.then(
    () => new Error('expected a refusal'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TidemarkError);
  return err as TidemarkError;
}

/** A raw plaintext PUT (bodies the client never sends). */
function put(address: string, path: string, body: string): Promise<{ status: number; body: string }> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host, port: Number(port), path, method: 'PUT', headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (b) => {
          text += b;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('PUT /v1/candidates/<name>', () => {
  it('over mutual TLS: a standby reports itself; the view lists it with its age, positions exact', async () => {
    const { w, address, log } = await start();
    const big = 2n ** 62n;
    await reportCandidate(address, cand('dr1', big, { priority: 3 }), { tls: dr1, timeoutMs: 2000 });
    await new Promise((r) => setTimeout(r, 30));
    const v = await fetchWitnessView(address, { tls: dr1, timeoutMs: 2000 });
    expect(v.candidates).toHaveLength(1);
    const [c] = v.candidates;
    expect(c).toMatchObject({
      name: 'dr1',
      priority: 3,
      position: { received: big, applied: big - 1n },
      promoted: null,
    });
    expect(c?.ageMs).toBeGreaterThanOrEqual(20);
    expect(c?.ageMs).toBeLessThan(2000);
    expect(w.report().candidates[0]?.position).toEqual({ received: big.toString(), applied: (big - 1n).toString() });
    expect(log.lines.some((l) => l['msg'] === 'witness: dr1 reports its position')).toBe(true);
  });

  it('over mutual TLS: a standby cannot report as another site (403, the CN named)', async () => {
    const { w, address, log } = await start();
    const e = await refusal(reportCandidate(address, cand('dr2', 5n), { tls: dr1, timeoutMs: 2000 }));
    expect(e.code).toBe('WITNESS_REFUSED');
    expect(e.retriable).toBe(false);
    expect(e.context).toMatchObject({ status: 403 });
    expect(e.message).toBe(
      `witness ${address}: refused the report of dr2 (HTTP 403): the client certificate is site "dr1", not "dr2": ` +
        'a standby reports only its own position',
    );
    expect(w.report().candidates).toEqual([]);
    expect(log.lines.some((l) => String(l['msg']).startsWith('witness: report refused: the client certificate'))).toBe(
      true,
    );
  });

  it('plaintext: any name is accepted (unauthenticated, as warned at start)', async () => {
    const { w, address } = await start({ tls: 'plaintext' });
    await reportCandidate(address, cand('dr2', 5n), { tls: 'plaintext', timeoutMs: 2000 });
    expect(w.report().candidates.map((c) => c.name)).toEqual(['dr2']);
  });

  it('a bad body is a 400 naming the field; nothing is stored', async () => {
    const { w, address } = await start({ tls: 'plaintext' });
    const ok = { priority: 0, position: { received: '5', applied: '4' }, eligible: true, promoted: null };
    const cases: [string, string, RegExp][] = [
      ['/v1/candidates/dr1', JSON.stringify({ ...ok, position: { received: 5, applied: '4' } }), /position\.received/],
      ['/v1/candidates/dr1', JSON.stringify({ ...ok, eligible: 1 }), /eligible is not a boolean/],
      ['/v1/candidates/dr1', JSON.stringify({ ...ok, extra: true }), /unknown keys extra/],
      ['/v1/candidates/dr1', '{"priority":', /JSON/i],
      ['/v1/candidates/dr_1', JSON.stringify(ok), /"dr_1" is not a site name/],
    ];
    for (const [path, body, msg] of cases) {
      const r = await put(address, path, body);
      expect(r.status, body).toBe(400);
      expect((JSON.parse(r.body) as { error: string }).error).toMatch(msg);
    }
    const big = await put(address, '/v1/candidates/dr1', JSON.stringify({ ...ok, pad: 'x'.repeat(10_000) }));
    expect(big.status).toBe(413);
    expect(w.report().candidates).toEqual([]);
  });

  it('a second standby claiming the promotion is refused (409) while the first holds it', async () => {
    const { w, address } = await start({ tls: 'plaintext' });
    const o = { tls: 'plaintext' as const, timeoutMs: 2000 };
    const at = '2026-03-02T10:00:00.000Z';
    await reportCandidate(address, cand('dr1', 5n), o);
    await reportCandidate(address, cand('dr2', 5n), o);
    await reportCandidate(address, cand('dr2', 5n, { promoted: at }), o);
    const e = await refusal(reportCandidate(address, cand('dr1', 5n, { promoted: at }), o));
    expect(e.context).toMatchObject({ status: 409 });
    expect(e.message).toContain(`dr1 cannot claim the promotion: dr2 was promoted at ${at}: it is the primary`);
    const v = await fetchWitnessView(address, o);
    expect(v.candidates.map((c: Candidate & { promoted: string | null }) => [c.name, c.promoted])).toEqual([
      ['dr1', null],
      ['dr2', at],
    ]);
    expect(w.report().candidates).toHaveLength(2);
  });
});

import { mkdtemp, rm } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TidemarkError } from '../core/errors.ts';
import { loadSiteTls, makeCerts, type TlsMaterial } from '../ship/tcp/certs.ts';
import { captureLog } from '../test/fixtures/ship-link.ts';
import { TEST_WITNESS_CALENDAR, testWitnessMonitor } from '../test/fixtures/witness.ts';
import type { ProbeResult } from './probes.ts';
import { collapseOverall } from './monitor.ts';
import { startWitness, type Witness, type WitnessOptions } from './witness.ts';
import { fetchWitnessView, type WitnessReport } from './witness-client.ts';

let root: string;
let witnessTls: TlsMaterial;
let dr1: TlsMaterial;
let foreignDr1: TlsMaterial;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tidemark-witness-'));
  await makeCerts({ dir: join(root, 'a'), ca: 'ca-a', sites: ['witness', 'dr1'] });
  await makeCerts({ dir: join(root, 'b'), ca: 'ca-b', sites: ['dr1'] });
  witnessTls = await loadSiteTls(join(root, 'a'), 'witness');
  dr1 = await loadSiteTls(join(root, 'a'), 'dr1');
  foreignDr1 = await loadSiteTls(join(root, 'b'), 'dr1');
}, 60_000);
afterAll(() => rm(root, { recursive: true, force: true }));

const MONITOR = testWitnessMonitor();

const running: { w: Witness; ac: AbortController }[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) {
    r.ac.abort();
    await r.w.finished;
  }
});

function primaryAt(port: number) {
  const ep = { host: '127.0.0.1', port, user: 'hb' };
  Object.defineProperty(ep, 'password', { value: 'pw', enumerable: false });
  return ep;
}

async function start(over: Partial<WitnessOptions> = {}): Promise<Witness & { log: ReturnType<typeof captureLog> }> {
  const log = captureLog();
  const ac = new AbortController();
  const w = await startWitness({
    primary: primaryAt(1),
    monitor: MONITOR,
    calendar: TEST_WITNESS_CALENDAR,
    listen: '127.0.0.1:0',
    tls: witnessTls,
    log: log.log,
    signal: ac.signal,
    ...over,
  });
  running.push({ w, ac });
  return Object.assign(w, { log });
}

const at = (w: Witness) => `127.0.0.1:${w.address().port}`;

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('witness', () => {
  it('serves its view over mutual TLS and follows the probes: healthy → suspect → failed → healthy', async () => {
    let up = true;
    const runProbe = async (): Promise<ProbeResult> =>
      up ? { ok: true, latencyMs: 1 } : { ok: false, error: 'primary gone' };
    const w = await start({ runProbe });
    const get = () => fetchWitnessView(at(w), { tls: dr1, timeoutMs: 2000 });
    await until('a first success', async () => ((await get()).report.probes[0]?.successes ?? 0) > 0 || undefined);
    expect((await get()).state).toBe('healthy');

    up = false;
    const seen = new Set<string>();
    const failed = await until('failed', async () => {
      const v = await get();
      seen.add(v.state);
      return v.state === 'failed' ? v : undefined;
    });
    expect(failed.report.probes[0]).toMatchObject({ name: 'heartbeat', state: 'failed', lastError: 'primary gone' });
    expect(failed.since).toBeLessThanOrEqual(failed.receivedAt);
    expect(w.view().state).toBe('failed');

    up = true;
    await until('healthy again', async () => ((await get()).state === 'healthy' ? true : undefined));
    const lines = w.log.lines.map((l) => String(l['msg'])).filter((m) => m.includes(' → '));
    const order = lines.map((m) => m.replace(/^witness: \S+ /, '').replace(/:.*$/, ''));
    expect(order).toEqual([
      'heartbeat healthy → suspect',
      'overall healthy → suspect',
      'heartbeat suspect → failed',
      'overall suspect → failed',
      'heartbeat failed → healthy',
      'overall failed → healthy',
    ]);
    expect(w.log.lines.find((l) => String(l['msg']).includes('overall suspect → failed'))?.['level']).toBe(50);
  });

  it('refuses a client without a certificate', async () => {
    const w = await start({ runProbe: async () => ({ ok: true, latencyMs: 1 }) });
    const outcome = await new Promise<string>((resolve) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: w.address().port,
          path: '/v1/view',
          ca: witnessTls.ca,
          servername: 'witness',
          agent: false,
        },
        (res) => resolve(`answered HTTP ${res.statusCode}`),
      );
      req.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code}`));
      req.end();
    });
    expect(outcome).toMatch(/^error (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED|ECONNRESET|EPIPE)/);
    await until(
      'the refusal logged',
      () => w.log.lines.some((l) => String(l['msg']).startsWith('witness: client refused')) || undefined,
    );
  });

  it('refuses a client certificate from another CA', async () => {
    const w = await start({ runProbe: async () => ({ ok: true, latencyMs: 1 }) });
    const err = await fetchWitnessView(at(w), { tls: foreignDr1, timeoutMs: 2000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).code).toBe('WITNESS_UNREACHABLE');
    expect((err as TidemarkError).retriable).toBe(true);
  });

  it('the client refuses a server whose certificate is not the witness site', async () => {
    const w = await start({ tls: dr1, runProbe: async () => ({ ok: true, latencyMs: 1 }) });
    const err = await fetchWitnessView(at(w), { tls: dr1, timeoutMs: 2000 }).catch((e: unknown) => e);
    expect((err as Error).message).toContain(`witness ${at(w)}: TLS handshake failed`);
    expect((err as Error).message).toContain('not "witness"');
  });

  it('with the real heartbeat probe against a dead port: failed, the error in the view; plaintext; /healthz', async () => {
    const dead = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const w = await start({ primary: primaryAt(dead), tls: 'plaintext' });
    const v = await until('failed', async () => {
      const x = await fetchWitnessView(at(w), { tls: 'plaintext', timeoutMs: 2000 });
      return x.state === 'failed' ? x : undefined;
    });
    expect(v.report.probes[0]?.lastError).toMatch(/ECONNREFUSED/);
    expect(v.report.probes[0]?.lastError).not.toContain('pw');
    const health = await new Promise<string>((resolve, reject) => {
      httpGet({ host: '127.0.0.1', port: w.address().port, path: '/healthz' }, (res) => {
        let body = '';
        res.on('data', (b) => {
          body += b;
        });
        res.on('end', () => resolve(`${res.statusCode} ${body}`));
      }).on('error', reject);
    });
    expect(health).toBe('200 {"status":"ok"}');
  });

  it('stops when the signal aborts: finished settles, the port is closed', async () => {
    const w = await start({ tls: 'plaintext', runProbe: async () => ({ ok: true, latencyMs: 1 }) });
    const address = at(w);
    const r = running.pop();
    r?.ac.abort();
    await w.finished;
    expect(w.log.lines.some((l) => l['msg'] === 'witness: stopped')).toBe(true);
    const err = await fetchWitnessView(address, { tls: 'plaintext', timeoutMs: 1000 }).catch((e: unknown) => e);
    expect((err as Error).message).toContain('connection refused');
  });

  it('a view report carries every probe, TCP checks included', async () => {
    const w = await start({
      tls: 'plaintext',
      monitor: { ...MONITOR, tcp: [{ name: 'app', address: '127.0.0.1:1', critical: false }] },
      runProbe: async (p) => (p.kind === 'tcp' ? { ok: false, error: 'refused' } : { ok: true, latencyMs: 2 }),
    });
    const r: WitnessReport = await until('the tcp check suspect', () =>
      w.report().probes[1]?.state === 'suspect' ? w.report() : undefined,
    );
    expect(r.probes.map((p) => [p.name, p.kind, p.critical])).toEqual([
      ['heartbeat', 'heartbeat', true],
      ['tcp:app', 'tcp', false],
    ]);
    expect(r.state).toBe('suspect'); // a non-critical probe never makes the primary failed
  });

  it('refuses an address it cannot listen on', async () => {
    const w = await start({ tls: 'plaintext', runProbe: async () => ({ ok: true, latencyMs: 1 }) });
    const err = await start({ tls: 'plaintext', listen: at(w) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).message).toMatch(/^witness: cannot listen on 127\.0\.0\.1:\d+/);
  });
});

describe('collapseOverall', () => {
  const t = (probe: string, from: string, to: string, at = 1) =>
    ({ probe, from, to, at, reason: `${from}→${to}` }) as Parameters<typeof collapseOverall>[0][number];
  it('keeps probe transitions and makes one overall transition of a round', () => {
    const round = [
      t('tcp:a', 'failed', 'healthy'),
      t('overall', 'failed', 'suspect'),
      t('heartbeat', 'failed', 'healthy'),
      t('overall', 'suspect', 'healthy', 2),
    ];
    expect(collapseOverall(round)).toEqual([
      t('tcp:a', 'failed', 'healthy'),
      t('heartbeat', 'failed', 'healthy'),
      { ...t('overall', 'suspect', 'healthy', 2), from: 'failed' },
    ]);
  });
  it('drops an overall round trip', () => {
    expect(collapseOverall([t('overall', 'healthy', 'suspect'), t('overall', 'suspect', 'healthy')])).toEqual([]);
  });
});

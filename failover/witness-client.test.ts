import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { TidemarkError } from '../core/errors.ts';
import { fetchWitnessView, parseWitnessReport, reportCandidate, viewOf, type WitnessReport } from './witness-client.ts';

const T = Date.parse('2026-03-02T10:00:00Z');

function report(over: Partial<Record<string, unknown>> = {}): Record<string, unknown> {
  return {
    version: 1,
    state: 'failed',
    since: T - 4000,
    now: T,
    probes: [
      {
        name: 'heartbeat',
        kind: 'heartbeat',
        critical: true,
        state: 'failed',
        since: T - 4000,
        failures: 6,
        successes: 0,
        failingSince: T - 7000,
        lastResultAt: T - 100,
        lastSuccessAt: T - 7500,
        lastError: '127.0.0.1:3306: connect ECONNREFUSED 127.0.0.1:3306',
        lastLatencyMs: 1.25,
      },
    ],
    ...over,
  };
}

const probe0 = (over: Record<string, unknown>) =>
  report({ probes: [{ ...(report().probes as object[])[0], ...over }] });

describe('parseWitnessReport', () => {
  it('reads a well-formed report', () => {
    const r = parseWitnessReport(JSON.parse(JSON.stringify(report())));
    expect(r.state).toBe('failed');
    expect(r.probes[0]?.lastLatencyMs).toBe(1.25);
  });

  const bad: [string, unknown, RegExp][] = [
    ['not an object', [1], /not an object/],
    ['null', null, /not an object/],
    ['a missing key', (({ since: _s, ...r }) => r)(report()), /lacks since/],
    ['an unknown key', report({ extra: 1 }), /unknown keys extra/],
    ['another version', report({ version: 2 }), /version 2/],
    ['an unknown state', report({ state: 'down' }), /state is not/],
    ['a time as a string', report({ since: String(T) }), /since is not a time/],
    ['a fractional time', report({ now: T + 0.5 }), /now is not a time/],
    ['a negative time', report({ since: -1 }), /since is not a time/],
    ['since after now', report({ since: T + 1 }), /since is later than now/],
    ['probes not a list', report({ probes: {} }), /probes is not a list/],
    ['a probe with a bad kind', probe0({ kind: 'ping' }), /probes\[0\]\.kind/],
    ['a probe with a bad state', probe0({ state: 'ok' }), /probes\[0\]\.state/],
    ['a probe with a negative count', probe0({ failures: -1 }), /probes\[0\]\.failures/],
    ['a probe with critical as text', probe0({ critical: 'yes' }), /probes\[0\]\.critical/],
    ['a probe with a numeric error', probe0({ lastError: 5 }), /probes\[0\]\.lastError/],
    ['a probe with an unknown key', probe0({ lag: 1 }), /probes\[0\] has unknown keys lag/],
    ['a probe with NaN-ish latency', probe0({ lastLatencyMs: 'fast' }), /lastLatencyMs/],
    [
      'repeated probe names',
      report({ probes: [(report().probes as object[])[0], (report().probes as object[])[0]] }),
      /repeats/,
    ],
  ];
  for (const [what, value, msg] of bad) {
    it(`refuses ${what}`, () => {
      expect(() => parseWitnessReport(value)).toThrow(msg);
    });
  }
});

describe("the view's candidates", () => {
  const entry = {
    name: 'dr2',
    priority: 1,
    position: { received: '18446744073709551615', applied: '7' },
    eligible: false,
    promoted: '2026-03-02T09:59:00.000Z',
    age_ms: 1200,
  };

  it('an older witness without the key: no candidates', () => {
    const r = parseWitnessReport(report());
    expect(r.candidates).toEqual([]);
    expect(viewOf(r, T).candidates).toEqual([]);
  });

  it('reads them into candidates with ageMs and promoted; since still moves onto the local clock', () => {
    const v = viewOf(parseWitnessReport(JSON.parse(JSON.stringify(report({ candidates: [entry] })))), T - 60_000);
    expect(v.since).toBe(T - 64_000);
    expect(v.candidates).toEqual([
      {
        name: 'dr2',
        priority: 1,
        position: { received: 2n ** 64n - 1n, applied: 7n },
        eligible: false,
        promoted: '2026-03-02T09:59:00.000Z',
        ageMs: 1200,
      },
    ]);
  });

  it('refuses a malformed entry, naming it', () => {
    expect(() => parseWitnessReport(report({ candidates: [{ ...entry, age_ms: 'old' }] }))).toThrow(
      /malformed view: candidates\[0\]\.age_ms is not a duration/,
    );
    expect(() => parseWitnessReport(report({ candidates: [{ ...entry, position: { received: 1 } }] }))).toThrow(
      /malformed view: candidates\[0\]\.position lacks applied/,
    );
  });
});

describe('viewOf', () => {
  it("moves since onto the standby's clock: the time in state is kept, the clocks' offset dropped", () => {
    const r = parseWitnessReport(report()) as WitnessReport;
    // The standby's clock is 60 s behind the witness's.
    const v = viewOf(r, T - 60_000);
    expect(v).toMatchObject({ state: 'failed', receivedAt: T - 60_000, since: T - 64_000 });
    expect(v.report).toBe(r);
  });
});

describe('fetchWitnessView (plain HTTP)', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });
  async function serve(handler: Parameters<typeof createServer>[1]): Promise<string> {
    const s = createServer(handler as never);
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return `127.0.0.1:${(s.address() as { port: number }).port}`;
  }
  const fetchFrom = (address: string, timeoutMs = 1000) =>
    fetchWitnessView(address, { tls: 'plaintext', timeoutMs, now: () => T + 5 });

  async function failure(p: Promise<unknown>): Promise<TidemarkError> {
    const err = await p.then(
      () => new Error('expected a failure'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TidemarkError);
    const e = err as TidemarkError;
    expect(e.retriable).toBe(true);
    return e;
  }

  it('returns the view with receivedAt on the local clock', async () => {
    const address = await serve((_req, res) => res.end(JSON.stringify(report())));
    const v = await fetchFrom(address);
    expect(v).toMatchObject({ state: 'failed', receivedAt: T + 5, since: T + 5 - 4000 });
  });

  it('bad JSON: WITNESS_BAD_VIEW naming the address', async () => {
    const address = await serve((_req, res) => res.end('{"version":1,'));
    const e = await failure(fetchFrom(address));
    expect(e.code).toBe('WITNESS_BAD_VIEW');
    expect(e.message).toMatch(new RegExp(`^witness ${address}: answer is not JSON`));
  });

  it('a malformed view is refused, not read', async () => {
    const address = await serve((_req, res) => res.end(JSON.stringify(report({ state: 'FAILED' }))));
    const e = await failure(fetchFrom(address));
    expect(e.code).toBe('WITNESS_BAD_VIEW');
    expect(e.message).toContain('malformed view: state');
  });

  it('an HTTP error status', async () => {
    const address = await serve((_req, res) => {
      res.statusCode = 503;
      res.end(JSON.stringify(report()));
    });
    expect((await failure(fetchFrom(address))).message).toContain('HTTP 503');
  });

  it('an oversized answer', async () => {
    const address = await serve((_req, res) => res.end('x'.repeat(300 * 1024)));
    expect((await failure(fetchFrom(address))).message).toContain('larger than');
  });

  it('refused', async () => {
    const address = await serve(() => {});
    const s = servers.pop() as Server;
    await new Promise((r) => s.close(r));
    const e = await failure(fetchFrom(address));
    expect(e.code).toBe('WITNESS_UNREACHABLE');
    expect(e.message).toBe(`witness ${address}: connection refused (is tidemark witness running there?)`);
  });

  it('a witness that never answers: bounded by the timeout', async () => {
    const address = await serve(() => {});
    const t0 = Date.now();
    const e = await failure(fetchFrom(address, 300));
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(e.message).toBe(`witness ${address}: no answer within 300 ms`);
  });

  it('reportCandidate: PUTs the report as JSON, positions as decimal strings', async () => {
    let seen = '';
    const address = await serve((req, res) => {
      let body = '';
      req.on('data', (b: Buffer) => {
        body += b;
      });
      req.on('end', () => {
        seen = `${req.method} ${req.url} ${req.headers['content-type']} ${body}`;
        res.statusCode = 204;
        res.end();
      });
    });
    const c = { name: 'dr1', priority: 2, position: { received: 2n ** 63n, applied: 5n }, eligible: true };
    await reportCandidate(address, { ...c, promoted: null }, { tls: 'plaintext', timeoutMs: 1000 });
    expect(seen).toBe(
      'PUT /v1/candidates/dr1 application/json ' +
        '{"priority":2,"position":{"received":"9223372036854775808","applied":"5"},"eligible":true,"promoted":null}',
    );
  });

  it("reportCandidate: a refusal carries the witness's message and status; 5xx is retriable", async () => {
    let status = 400;
    const address = await serve((_req, res) => {
      res.statusCode = status;
      res.end(JSON.stringify({ error: 'bad candidate report: eligible is not a boolean' }));
    });
    const c = { name: 'dr1', priority: 0, position: null, eligible: true, promoted: null };
    const report400 = await reportCandidate(address, c, { tls: 'plaintext', timeoutMs: 1000 }).catch((e) => e);
    expect(report400).toBeInstanceOf(TidemarkError);
    expect(report400).toMatchObject({ code: 'WITNESS_REFUSED', retriable: false, context: { status: 400 } });
    expect(report400.message).toBe(
      `witness ${address}: refused the report of dr1 (HTTP 400): bad candidate report: eligible is not a boolean`,
    );
    status = 503;
    const e = await failure(reportCandidate(address, c, { tls: 'plaintext', timeoutMs: 1000 }));
    expect(e.context).toMatchObject({ status: 503 });
  });

  it('stops when the signal aborts', async () => {
    const address = await serve(() => {});
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const p = fetchWitnessView(address, { tls: 'plaintext', timeoutMs: 10_000, signal: ac.signal });
    expect((await failure(p)).message).toContain('request stopped');
  });
});

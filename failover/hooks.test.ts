import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type AlertEvent, eventJson, redactUrl, scrubUrl, sendAlert } from './hooks.ts';

function memoryLog() {
  const lines: string[] = [];
  const dest = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, dest), lines };
}

interface Received {
  method: string;
  url: string;
  contentType: string | undefined;
  body: string;
}

let server: Server;
let base = '';
const received: Received[] = [];
let respond: (req: IncomingMessage, res: ServerResponse) => void = (_q, res) => res.end('ok');

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString();
    });
    req.on('end', () => {
      received.push({ method: req.method ?? '', url: req.url ?? '', contentType: req.headers['content-type'], body });
      respond(req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

afterEach(() => {
  received.length = 0;
  respond = (_q, res) => res.end('ok');
});

const TOKEN = 'T0KEN-s3cr3t-9f8e7d';
const event: AlertEvent = {
  kind: 'takeover',
  site: 'dr1',
  at: Date.UTC(2025, 0, 2, 3, 4, 5),
  mode: 'automatic',
  position: { file: 'mysql-bin.000007', offset: 18446744073709551615n, gtid: '0-1-42' },
};

describe('sendAlert webhook', () => {
  it('POSTs the event as JSON: at in ISO 8601, bigints as strings, a summary line', async () => {
    const { log } = memoryLog();
    const r = await sendAlert({ webhook: { url: `${base}/hooks/${TOKEN}?x=1`, timeout_ms: 2000 } }, event, log);
    expect(r).toEqual({ ok: true, detail: `webhook ${base}: ok` });
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ method: 'POST', url: `/hooks/${TOKEN}?x=1`, contentType: 'application/json' });
    expect(JSON.parse(received[0]!.body)).toEqual({
      kind: 'takeover',
      site: 'dr1',
      at: '2025-01-02T03:04:05.000Z',
      summary: 'tidemark takeover at site dr1',
      mode: 'automatic',
      position: { file: 'mysql-bin.000007', offset: '18446744073709551615', gtid: '0-1-42' },
    });
  });

  it('gives up after timeout_ms, never throws, and logs only the origin', async () => {
    respond = () => {}; // never answers
    const { log, lines } = memoryLog();
    const t0 = Date.now();
    const r = await sendAlert({ webhook: { url: `${base}/hooks/${TOKEN}`, timeout_ms: 300 } }, event, log);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(r).toEqual({ ok: false, detail: `webhook ${base}: no answer within 300 ms` });
    expect(lines.some((l) => l.includes('no answer within 300 ms'))).toBe(true);
    expect(lines.join('\n')).not.toContain(TOKEN);
  });

  it('reports an HTTP error status as a failure, without the token', async () => {
    respond = (_q, res) => {
      res.statusCode = 503;
      res.end(`echoing ${TOKEN}`);
    };
    const { log, lines } = memoryLog();
    const r = await sendAlert({ webhook: { url: `${base}/hooks/${TOKEN}`, timeout_ms: 2000 } }, event, log);
    expect(r).toEqual({ ok: false, detail: `webhook ${base}: HTTP 503` });
    expect(lines.join('\n')).not.toContain(TOKEN);
  });

  it('a refused connection or a malformed URL is reported, the secret parts never', async () => {
    const { log, lines } = memoryLog();
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const closed = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const refused = await sendAlert(
      { webhook: { url: `http://user:pw-${TOKEN}@127.0.0.1:${closed}/h/${TOKEN}`, timeout_ms: 2000 } },
      event,
      log,
    );
    expect(refused.ok).toBe(false);
    expect(refused.detail).toMatch(
      new RegExp(`^webhook http://127\\.0\\.0\\.1:${closed}: fetch failed: .*ECONNREFUSED`),
    );
    const bad = await sendAlert({ webhook: { url: `ht!tp:/${TOKEN}`, timeout_ms: 2000 } }, event, log);
    expect(bad.ok).toBe(false);
    expect(bad.detail).toMatch(/^webhook <invalid url>: /);
    const all = `${refused.detail}\n${bad.detail}\n${lines.join('\n')}`;
    expect(all).not.toContain(TOKEN);
  });
});

describe('sendAlert command', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tm-hooks-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs the command with the event JSON on stdin and its kind in the environment', async () => {
    const out = join(dir, 'event.json');
    const { log } = memoryLog();
    const r = await sendAlert(
      { command: ['bash', '-c', `cat > ${out}; echo "$TIDEMARK_EVENT_KIND" >> ${out}`] },
      event,
      log,
    );
    expect(r).toEqual({ ok: true, detail: 'command bash: ok' });
    const [json, kind] = readFileSync(out, 'utf8').trim().split('\n');
    expect(JSON.parse(json!)).toMatchObject({ kind: 'takeover', at: '2025-01-02T03:04:05.000Z' });
    expect(kind).toBe('takeover');
  });

  it('a failing or hanging command is reported and logged, both channels run', async () => {
    const { log, lines } = memoryLog();
    const r = await sendAlert(
      {
        webhook: { url: `${base}/ok`, timeout_ms: 2000 },
        command: ['bash', '-c', 'echo paging failed >&2; exit 4'],
      },
      event,
      log,
    );
    expect(r.ok).toBe(false);
    expect(r.detail).toBe(
      `webhook ${base}: ok; command bash: bash -c 'echo paging failed >&2; exit 4': exited with 4: paging failed`,
    );
    expect(received).toHaveLength(1);
    expect(lines.some((l) => l.includes('alert command failed'))).toBe(true);

    const hung = await sendAlert({ command: ['sleep', '30'] }, event, log, { commandTimeoutMs: 200 });
    expect(hung).toEqual({ ok: false, detail: expect.stringMatching(/^command sleep: sleep 30: timed out after/) });
    const missing = await sendAlert({ command: ['/nonexistent/pager'] }, event, log);
    expect(missing).toEqual({ ok: false, detail: expect.stringMatching(/cannot run \/nonexistent\/pager/) });
  });

  it('nothing configured is fine', async () => {
    expect(await sendAlert({}, event, memoryLog().log)).toEqual({ ok: true, detail: 'no alert hook configured' });
  });
});

describe('redaction helpers', () => {
  it('keeps the origin only', () => {
    expect(redactUrl(`https://u:p@hooks.example.com:8443/services/${TOKEN}?k=v#f`)).toBe(
      'https://hooks.example.com:8443',
    );
    expect(redactUrl('not a url')).toBe('<invalid url>');
  });

  it('scrubs the URL and its secret parts out of a message', () => {
    const url = `https://hooks.example.com/services/${TOKEN}?key=abc`;
    expect(scrubUrl(`request to ${url} failed`, url)).toBe('request to https://hooks.example.com/… failed');
    expect(scrubUrl(`bad path /services/${TOKEN}?key=abc`, url)).toBe('bad path …');
  });

  it('eventJson writes bigints as decimal strings', () => {
    expect(eventJson({ a: 1n << 64n })).toBe('{"a":"18446744073709551616"}');
  });
});

describe('webhook credentials', () => {
  it('user:password in the URL is sent as Basic authorization, not in the URL', async () => {
    let auth: string | undefined;
    respond = (req, res) => {
      auth = req.headers.authorization;
      res.end();
    };
    const url = base.replace('http://', `http://alert%40ops:p%3Aw-${TOKEN}@`);
    const r = await sendAlert({ webhook: { url: `${url}/in`, timeout_ms: 2000 } }, event, memoryLog().log);
    expect(r).toEqual({ ok: true, detail: `webhook ${base}: ok` });
    expect(auth).toBe(`Basic ${Buffer.from(`alert@ops:p:w-${TOKEN}`).toString('base64')}`);
    expect(received[0]?.url).toBe('/in');
  });
});

import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { MysqlEndpoint } from '../mysql/session.ts';
import { HeartbeatProbe, heartbeatProbe, quoteIdent, splitAddress, splitTable, tcpProbe } from './probes.ts';

/** A TCP server whose behaviour per connection is given; records sockets and when each closed. */
interface Fake {
  readonly port: number;
  readonly sockets: Socket[];
  readonly closed: Socket[];
  close(): Promise<void>;
}

const servers: Fake[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function fakeServer(onConn: (s: Socket) => void = () => {}): Promise<Fake> {
  const sockets: Socket[] = [];
  const closed: Socket[] = [];
  const server: Server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
    s.on('close', () => closed.push(s));
    onConn(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const fake: Fake = {
    port,
    sockets,
    closed,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
  servers.push(fake);
  return fake;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const f = await fakeServer();
  await f.close();
  servers.splice(servers.indexOf(f), 1);
  return f.port;
}

function endpoint(port: number, password = 'sekret-pw'): MysqlEndpoint {
  const ep = { host: '127.0.0.1', port, user: 'hb' };
  Object.defineProperty(ep, 'password', { value: password, enumerable: false });
  return ep;
}

const until = async (cond: () => boolean, ms = 2000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('identifiers and addresses', () => {
  it('quotes identifiers with backticks, doubling backticks inside', () => {
    expect(quoteIdent('heartbeat')).toBe('`heartbeat`');
    expect(quoteIdent('a`b')).toBe('`a``b`');
    expect(quoteIdent('``')).toBe('``````');
  });

  it('splits "schema.table" and refuses anything else', () => {
    expect(splitTable('tidemark.heartbeat')).toEqual({ schema: 'tidemark', table: 'heartbeat' });
    for (const bad of ['heartbeat', '.t', 's.', 'a.b.c', `${'x'.repeat(65)}.t`]) {
      expect(() => splitTable(bad), bad).toThrow(/schema\.table/);
    }
  });

  it('splits "host:port", IPv6 in brackets', () => {
    expect(splitAddress('db1:3306')).toEqual({ host: 'db1', port: 3306 });
    expect(splitAddress('[::1]:7410')).toEqual({ host: '::1', port: 7410 });
    for (const bad of ['db1', ':3306', 'db1:0', 'db1:70000', 'db1:x']) expect(() => splitAddress(bad), bad).toThrow();
  });
});

describe('heartbeat probe timeouts', () => {
  it('a server that accepts and never answers: fails within the timeout and closes the socket', async () => {
    const srv = await fakeServer();
    const t0 = Date.now();
    const r = await heartbeatProbe(endpoint(srv.port), { table: 'tidemark.heartbeat', writer: 'w', timeoutMs: 300 });
    const took = Date.now() - t0;
    expect(r).toEqual({ ok: false, error: `127.0.0.1:${srv.port}: no answer within 300 ms` });
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(1500);
    await until(() => srv.closed.length === 1);
  });

  it('a kept probe replaces the connection a timeout broke', async () => {
    const srv = await fakeServer();
    const p = new HeartbeatProbe(endpoint(srv.port), { table: 'tidemark.heartbeat', writer: 'w', timeoutMs: 200 });
    try {
      const a = await p.probe();
      const b = await p.probe();
      expect(a.ok).toBe(false);
      expect(b.ok).toBe(false);
      await until(() => srv.closed.length === 2);
      expect(srv.sockets).toHaveLength(2);
    } finally {
      p.close();
    }
  });

  it('a server that closes at once: fails fast, naming the server, without the password', async () => {
    const srv = await fakeServer((s) => s.destroy());
    const t0 = Date.now();
    const r = await heartbeatProbe(endpoint(srv.port), { table: 'tidemark.heartbeat', writer: 'w', timeoutMs: 5000 });
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error).toContain(`127.0.0.1:${srv.port}`);
    expect(r.error).not.toContain('sekret-pw');
  });

  it('a server that answers garbage and hangs: bounded by the timeout', async () => {
    const srv = await fakeServer((s) => s.write(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')));
    const r = await heartbeatProbe(endpoint(srv.port), { table: 'tidemark.heartbeat', writer: 'w', timeoutMs: 300 });
    expect(r).toEqual({ ok: false, error: `127.0.0.1:${srv.port}: no answer within 300 ms` });
    await until(() => srv.closed.length === 1);
  });

  it('a server that answers garbage and closes: fails at once', async () => {
    const srv = await fakeServer((s) => s.end(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')));
    const r = await heartbeatProbe(endpoint(srv.port), { table: 'tidemark.heartbeat', writer: 'w', timeoutMs: 5000 });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).not.toMatch(/no answer within/);
  });

  it('refused: the error names the address', async () => {
    const port = await closedPort();
    const r = await heartbeatProbe(endpoint(port), { table: 'tidemark.heartbeat', writer: 'w', timeoutMs: 2000 });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(new RegExp(`ECONNREFUSED.*127\\.0\\.0\\.1:${port}`));
  });

  it('stops at once when the signal aborts, closing the socket', async () => {
    const srv = await fakeServer();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const t0 = Date.now();
    const r = await heartbeatProbe(endpoint(srv.port), {
      table: 'tidemark.heartbeat',
      writer: 'w',
      timeoutMs: 10_000,
      signal: ac.signal,
    });
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(r).toEqual({ ok: false, error: `127.0.0.1:${srv.port}: probe stopped` });
    await until(() => srv.closed.length === 1);
  });

  it('refuses a bad table name or writer at construction', () => {
    expect(() => new HeartbeatProbe(endpoint(1), { table: 'nodot', writer: 'w', timeoutMs: 100 })).toThrow(/schema/);
    expect(() => new HeartbeatProbe(endpoint(1), { table: 'a.b', writer: '', timeoutMs: 100 })).toThrow(/writer/);
  });
});

describe('tcp probe', () => {
  it('succeeds on a listening port, with a latency', async () => {
    const srv = await fakeServer();
    const r = await tcpProbe(`127.0.0.1:${srv.port}`, 1000);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.latencyMs).toBeGreaterThanOrEqual(0);
    await until(() => srv.closed.length === 1);
  });

  it('fails on a closed port, naming it', async () => {
    const port = await closedPort();
    const r = await tcpProbe(`127.0.0.1:${port}`, 1000);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain(`127.0.0.1:${port}`);
  });

  it('is bounded by its timeout on an address that does not answer', async () => {
    // TEST-NET-1: either unroutable here (fails fast) or silently dropped (the timeout must end it).
    const t0 = Date.now();
    const r = await tcpProbe('192.0.2.1:9', 300);
    expect(r.ok).toBe(false);
    expect(Date.now() - t0).toBeLessThan(1500);
  });
});

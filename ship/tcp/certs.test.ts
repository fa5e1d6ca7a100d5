import { X509Certificate } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import { altNames, commonName, loadSiteTls, makeCerts, type TlsMaterial } from './certs.ts';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tidemark-certs-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function usageError(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TidemarkError);
  expect((err as TidemarkError).code).toBe('USAGE');
  return (err as Error).message;
}

describe('certs: files', () => {
  it('makes a CA and per-site keys and certificates with the right names, usages and modes', async () => {
    const dir = join(root, 'files');
    const res = await makeCerts({
      dir,
      ca: 'acme-ca',
      sites: ['dc1', 'dc2'],
      days: 30,
      hosts: ['db.example.com'],
      ips: ['127.0.0.1'],
    });
    expect(res.caCreated).toBe(true);
    expect((await readdir(dir)).sort()).toEqual(['ca.crt', 'ca.key', 'dc1.crt', 'dc1.key', 'dc2.crt', 'dc2.key']);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    for (const k of ['ca.key', 'dc1.key', 'dc2.key']) expect((await stat(join(dir, k))).mode & 0o777).toBe(0o600);
    const ca = new X509Certificate(await readFile(join(dir, 'ca.crt')));
    expect(ca.ca).toBe(true);
    expect(commonName(ca)).toBe('acme-ca');
    const dc1 = new X509Certificate(await readFile(join(dir, 'dc1.crt')));
    expect(dc1.ca).toBe(false);
    expect(commonName(dc1)).toBe('dc1');
    expect(altNames(dc1)).toEqual({ dns: ['dc1', 'db.example.com'], ips: ['127.0.0.1'] });
    expect(dc1.keyUsage?.sort()).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']); // serverAuth, clientAuth
    expect(dc1.checkIssued(ca) && dc1.verify(ca.publicKey)).toBe(true);
    const days = (new Date(dc1.validTo).getTime() - new Date(dc1.validFrom).getTime()) / 86_400_000;
    expect(days).toBe(30);
    expect(dc1.serialNumber).not.toBe(new X509Certificate(await readFile(join(dir, 'dc2.crt'))).serialNumber);
  });

  it('reuses the CA for new sites, and refuses to overwrite anything without force', async () => {
    const dir = join(root, 'reuse');
    await makeCerts({ dir, ca: 'acme-ca', sites: ['dc1'] });
    const caBefore = await readFile(join(dir, 'ca.crt'), 'utf8');
    const again = await makeCerts({ dir, ca: 'acme-ca', sites: ['dc3'] });
    expect(again.caCreated).toBe(false);
    expect(await readFile(join(dir, 'ca.crt'), 'utf8')).toBe(caBefore);
    const ca = new X509Certificate(caBefore);
    expect(new X509Certificate(await readFile(join(dir, 'dc3.crt'))).verify(ca.publicKey)).toBe(true);

    expect(await usageError(makeCerts({ dir, ca: 'acme-ca', sites: ['dc1'] }))).toMatch(
      /already holds dc1.key, dc1.crt; use --force/,
    );
    expect(await usageError(makeCerts({ dir, ca: 'other-ca', sites: ['dc9'] }))).toMatch(
      /already holds a CA named "acme-ca", not "other-ca"; use --force/,
    );
    // Nothing was left behind by the refusals (no staging directories, no dc9 files).
    expect((await readdir(dir)).sort()).toEqual(['ca.crt', 'ca.key', 'dc1.crt', 'dc1.key', 'dc3.crt', 'dc3.key']);

    // --force with the same, valid CA: the CA stays (other sites keep working), the site is reissued.
    const dc1Before = await readFile(join(dir, 'dc1.crt'), 'utf8');
    const reissued = await makeCerts({ dir, ca: 'acme-ca', sites: ['dc1'], force: true });
    expect(reissued.caCreated).toBe(false);
    expect(await readFile(join(dir, 'ca.crt'), 'utf8')).toBe(caBefore);
    expect(await readFile(join(dir, 'dc1.crt'), 'utf8')).not.toBe(dc1Before);

    // --force with a CA that does not fit (another name): replaced.
    const forced = await makeCerts({ dir, ca: 'other-ca', sites: ['dc1'], force: true });
    expect(forced.caCreated).toBe(true);
    expect(await readFile(join(dir, 'ca.crt'), 'utf8')).not.toBe(caBefore);
  });

  it('refuses a half CA, bad names and bad numbers', async () => {
    const dir = join(root, 'half');
    await makeCerts({ dir, ca: 'x', sites: ['a'] });
    await rm(join(dir, 'ca.key'));
    expect(await usageError(makeCerts({ dir, ca: 'x', sites: ['b'] }))).toMatch(
      /holds ca.crt without ca.key; use --force/,
    );
    // A key that is not the certificate's.
    await makeCerts({ dir: join(root, 'half2'), ca: 'x', sites: ['a'] });
    await rename(join(root, 'half2', 'a.key'), join(dir, 'ca.key'));
    expect(await usageError(makeCerts({ dir, ca: 'x', sites: ['b'] }))).toMatch(
      /ca.key is not the key of .*ca.crt; use --force/,
    );
    expect((await makeCerts({ dir, ca: 'x', sites: ['b'], force: true })).caCreated).toBe(true);
    const d = join(root, 'never');
    expect(await usageError(makeCerts({ dir: d, ca: 'x', sites: [] }))).toMatch(/at least one site/);
    expect(await usageError(makeCerts({ dir: d, ca: 'x', sites: ['ca'] }))).toMatch(/reserved/);
    expect(await usageError(makeCerts({ dir: d, ca: 'x', sites: ['a_b'] }))).toMatch(/DNS-style name/);
    expect(await usageError(makeCerts({ dir: d, ca: 'x', sites: ['a', 'A'] }))).toMatch(/named twice/);
    expect(await usageError(makeCerts({ dir: d, ca: 'x/y', sites: ['a'] }))).toMatch(/CA name/);
    expect(await usageError(makeCerts({ dir: d, ca: 'x', sites: ['a'], ips: ['1.2.3'] }))).toMatch(/not an IPv4/);
    expect(await usageError(makeCerts({ dir: d, ca: 'x', sites: ['a'], hosts: ['-x'] }))).toMatch(/not a DNS name/);
    expect(await usageError(makeCerts({ dir: d, ca: 'x', sites: ['a'], days: 0 }))).toMatch(/--days/);
  });

  it('names the missing openssl command', async () => {
    const err = await makeCerts({
      dir: join(root, 'noopenssl'),
      ca: 'x',
      sites: ['a'],
      openssl: 'openssl-missing-xyz',
    }).catch((e: unknown) => e);
    expect((err as TidemarkError).code).toBe('CERTS_OPENSSL');
    expect((err as Error).message).toMatch(/"openssl-missing-xyz" command was not found/);
  });

  it('loads a site and warns about a readable key', async () => {
    const dir = join(root, 'load');
    await makeCerts({ dir, ca: 'x', sites: ['a'] });
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (s: string) => lines.push(s) });
    const m = await loadSiteTls(dir, 'a', log);
    expect(m.cert).toMatch(/BEGIN CERTIFICATE/);
    expect(lines).toEqual([]);
    await chmod(join(dir, 'a.key'), 0o644);
    await loadSiteTls(dir, 'a', log);
    expect(lines.join('')).toMatch(/readable by group or others/);
    await expect(loadSiteTls(dir, 'zz')).rejects.toThrow(/cannot read .*zz.crt \(make it with: tidemark certs/);
  });
});

describe('certs: mutual TLS with node:tls', () => {
  let good: Record<'dc1' | 'dc2', TlsMaterial>;
  let foreign: TlsMaterial;
  const logged: string[] = [];

  beforeAll(async () => {
    const a = join(root, 'tls-a');
    const b = join(root, 'tls-b');
    await makeCerts({ dir: a, ca: 'ca-a', sites: ['dc1', 'dc2'] });
    await makeCerts({ dir: b, ca: 'ca-b', sites: ['dc1'] });
    good = { dc1: await loadSiteTls(a, 'dc1'), dc2: await loadSiteTls(a, 'dc2') };
    foreign = await loadSiteTls(b, 'dc1');
  });

  /**
   * A server for `server` that requires a client certificate from its CA (rejectUnauthorized), and one client
   * connection. Returns what the client received, or the server's logged reason for refusing it.
   */
  async function attempt(
    server: TlsMaterial,
    serverName: string,
    client: Partial<TlsMaterial>,
  ): Promise<{ got: string | null; refused: string | null; clientPeer: string | null }> {
    let refused: string | null = null;
    const log = pino({ level: 'info' }, { write: (line: string) => logged.push(line) });
    const srv = tls.createServer(
      { ...server, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' },
      (s) => s.end(`hello ${s.getPeerCertificate().subject.CN}`),
    );
    srv.on('tlsClientError', (err, s) => {
      // Node verifies the client certificate itself and then only sees the socket hang up; the reason is on the
      // socket (authorizationError), or in the OpenSSL error when no certificate came at all.
      refused = s.authorizationError
        ? String(s.authorizationError)
        : ((err as NodeJS.ErrnoException).code ?? err.message);
      log.warn({ reason: refused }, 'tls: refused a client');
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;
    try {
      return await new Promise((resolve) => {
        let got = '';
        let clientPeer: string | null = null;
        const c = tls.connect({ port, host: '127.0.0.1', servername: serverName, ca: server.ca, ...client });
        c.on('secureConnect', () => {
          clientPeer = String(c.getPeerCertificate().subject.CN);
        });
        c.on('data', (d: Buffer) => {
          got += d.toString();
        });
        c.on('error', () => undefined);
        c.on('close', () => setTimeout(() => resolve({ got: got || null, refused, clientPeer }), 20));
      });
    } finally {
      srv.close();
    }
  }

  it('accepts a client certificate from the CA, in either role', async () => {
    expect(await attempt(good.dc2, 'dc2', { cert: good.dc1.cert, key: good.dc1.key })).toEqual({
      got: 'hello dc1',
      refused: null,
      clientPeer: 'dc2',
    });
    expect(await attempt(good.dc1, 'dc1', { cert: good.dc2.cert, key: good.dc2.key })).toEqual({
      got: 'hello dc2',
      refused: null,
      clientPeer: 'dc1',
    });
  });

  it('refuses a client certificate from another CA, and says why', async () => {
    const r = await attempt(good.dc2, 'dc2', { cert: foreign.cert, key: foreign.key });
    expect(r.got).toBeNull();
    expect(r.refused).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(logged.at(-1)).toMatch(/"reason":"UNABLE_TO_VERIFY_LEAF_SIGNATURE".*"msg":"tls: refused a client"/);
  });

  it('refuses a client without a certificate, and says why', async () => {
    const r = await attempt(good.dc2, 'dc2', {});
    expect(r.got).toBeNull();
    expect(r.refused).toBe('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE');
    expect(logged.at(-1)).toMatch(
      /"reason":"ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE".*"msg":"tls: refused a client"/,
    );
  });

  it('lets a client check which site it reached', async () => {
    const err = await new Promise<Error>((resolve) => {
      const srv = tls.createServer({ ...good.dc2, requestCert: true, rejectUnauthorized: true });
      srv.listen(0, '127.0.0.1', () => {
        const c = tls.connect({
          port: (srv.address() as AddressInfo).port,
          host: '127.0.0.1',
          servername: 'dc3',
          ...good.dc1,
        });
        c.on('error', (e) => {
          srv.close();
          resolve(e);
        });
      });
    });
    expect((err as NodeJS.ErrnoException).code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });
});

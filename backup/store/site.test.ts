import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import { silentLogger } from '../../core/log.ts';
import { loadSiteTls, makeCerts, type TlsMaterial } from '../../ship/tcp/index.ts';
import { FaultProxy } from '../../test/fixtures/fault-proxy.ts';
import { STORE_CONTRACT } from './contract.ts';
import { DirStore } from './dir.ts';
import { SiteStore } from './site.ts';
import { StoreServer } from './site-server.ts';

let root: string;
let local: DirStore;
let server: StoreServer;
let store: SiteStore;
let dr1: TlsMaterial;
let primary: TlsMaterial;
let stranger: TlsMaterial;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tm-sitestore-'));
  await makeCerts({ dir: join(root, 'certs'), ca: 'test-ca', sites: ['primary', 'dr1', 'dr2'], ips: ['127.0.0.1'] });
  await makeCerts({ dir: join(root, 'other'), ca: 'other-ca', sites: ['primary'], ips: ['127.0.0.1'] });
  dr1 = await loadSiteTls(join(root, 'certs'), 'dr1');
  primary = await loadSiteTls(join(root, 'certs'), 'primary');
  stranger = await loadSiteTls(join(root, 'other'), 'primary');
  local = await DirStore.open(join(root, 'store'));
  server = await StoreServer.listen({
    store: local,
    storeName: 'vault',
    host: '127.0.0.1',
    port: 0,
    security: dr1,
    sites: ['primary'],
    log: silentLogger,
  });
  store = await SiteStore.open({
    site: 'dr1',
    self: 'primary',
    host: '127.0.0.1',
    port: server.port,
    security: primary,
    log: silentLogger,
  });
}, 60_000);

afterAll(async () => {
  await store?.close();
  await server?.close();
  await rm(root, { recursive: true, force: true });
});

describe('SiteStore → StoreServer (mutual TLS) → DirStore: the store contract', () => {
  for (const [i, c] of STORE_CONTRACT.entries()) {
    it(c.name, () => c.run(store, `c${i}/`));
  }
  it('is named after the site and the store it serves', () => {
    expect(store.name).toBe('site:dr1/vault');
  });
});

describe('SiteStore: refusals and link faults', () => {
  const open = (security: TlsMaterial, self: string, port = server.port) =>
    SiteStore.open({ site: 'dr1', self, host: '127.0.0.1', port, security, log: silentLogger, timeoutMs: 5000 });

  it('a certificate from another CA is refused', async () => {
    await expect(open(stranger, 'primary')).rejects.toThrow(TidemarkError);
  });

  it('a site the server does not allow, or one the certificate does not name, is refused with the reason', async () => {
    const dr2 = await loadSiteTls(join(root, 'certs'), 'dr2');
    await expect(open(dr2, 'dr2')).rejects.toThrow(/site "dr2" may not use this store/);
    await expect(open(dr2, 'primary')).rejects.toThrow(/certificate does not name it/);
  });

  it('a link cut mid-put fails the put (retriable) and leaves nothing; the put then succeeds', async () => {
    const proxy = await FaultProxy.start({ upstreamHost: '127.0.0.1', upstreamPort: server.port });
    const s = await open(primary, 'primary', proxy.port);
    try {
      let sent = 0;
      const body = new Readable({
        read() {
          sent++;
          if (sent === 4) proxy.closeAll(); // after ~3 MiB went out
          if (sent > 16) return void this.push(null);
          this.push(Buffer.alloc(1 << 20, sent));
        },
      });
      const err = await s.put('cut/piece-000001', body).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TidemarkError);
      expect((err as TidemarkError).retriable).toBe(true);
      await new Promise((r) => setTimeout(r, 200)); // the server notices the cut and discards the body
      expect(await local.head('cut/piece-000001')).toBeNull();
      const again = await s.put('cut/piece-000001', Readable.from([Buffer.alloc(3 << 20, 7)]));
      expect(again.size).toBe(3n << 20n);
      expect((await local.head('cut/piece-000001'))?.size).toBe(3n << 20n);
    } finally {
      await s.close();
      await proxy.close();
    }
  });
});

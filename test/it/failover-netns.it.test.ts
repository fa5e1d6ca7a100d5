/**
 * The network fixture of the takeover tests (issue #5): four hosts in network namespaces on one bridge —
 * primary, standby, witness, client — MariaDB inside primary and standby, a VIP on the bridge's subnet. Proves
 * the ground the takeover acceptance test will stand on: a server runs inside a namespace (and only there),
 * a client elsewhere reaches it through the VIP, moving the VIP (with gratuitous ARP) moves the service, and
 * cutting a link or blocking a pair of hosts makes it unreachable, silently, until healed.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destroyInstance } from '../fixtures/mariadb.ts';
import {
  addHost,
  block,
  cut,
  type Forwarder,
  type Host,
  heal,
  macOf,
  neighbourMac,
  netns,
  netnsUnavailable,
  removeAllHosts,
  sqlFrom,
  startForwarder,
  startInstanceIn,
  unblock,
  vipAdd,
  vipDel,
} from '../fixtures/netns.ts';

const VIP = '10.231.0.100';
const VIP_CIDR = `${VIP}/24`;
const SERVICE_PORT = 3610; // the forwarder's port inside each namespace
const PRIMARY = { instance: 'fo_primary', port: 3601 };
const STANDBY = { instance: 'fo_standby', port: 3602 };

const unavailable = netnsUnavailable();
if (unavailable) console.warn(`failover-netns: skipped, network namespaces unavailable: ${unavailable}`);

/** Whether something accepts TCP on the host namespace's 127.0.0.1:port. */
function hostLoopbackAccepts(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect(port, '127.0.0.1');
    s.setTimeout(2000, () => s.destroy());
    s.on('connect', () => {
      s.destroy();
      res(true);
    });
    s.on('error', () => res(false));
    s.on('close', () => res(false));
  });
}

describe.skipIf(unavailable !== null)('failover network fixture', () => {
  let primary: Host;
  let standby: Host;
  let witness: Host;
  let client: Host;
  const forwarders: Forwarder[] = [];
  const serverId = (from: Host, host: string) => sqlFrom(from, host, SERVICE_PORT, 'SELECT @@server_id', 2);

  beforeAll(async () => {
    removeAllHosts(); // leftovers of an interrupted run: only tm-* namespaces and tmbr0
    netns(['install']); // arping (iputils-arping) for gratuitous ARP
    primary = addHost('primary', '10.231.0.11');
    standby = addHost('standby', '10.231.0.12');
    witness = addHost('witness', '10.231.0.13');
    client = addHost('client', '10.231.0.20');
    startInstanceIn(primary, PRIMARY.instance, PRIMARY.port, { fresh: true });
    startInstanceIn(standby, STANDBY.instance, STANDBY.port, { fresh: true });
    forwarders.push(await startForwarder(primary, SERVICE_PORT, PRIMARY.port));
    forwarders.push(await startForwarder(standby, SERVICE_PORT, STANDBY.port));
    vipAdd(primary, VIP_CIDR);
  });

  afterAll(async () => {
    for (const f of forwarders) await f.stop().catch(() => {});
    for (const i of [PRIMARY, STANDBY]) {
      try {
        destroyInstance(i.instance);
      } catch (err) {
        console.error(`failover-netns: could not destroy ${i.instance}: ${String(err)}`);
      }
    }
    removeAllHosts();
    expect(netns(['status'])).toMatch(/^bridge tmbr0 absent\n?$/);
  });

  it('runs MariaDB inside a namespace, and only there', async () => {
    expect(serverId(client, primary.addr)).toMatchObject({ ok: true, stdout: `${PRIMARY.port}\n` });
    expect(serverId(client, standby.addr)).toMatchObject({ ok: true, stdout: `${STANDBY.port}\n` });
    // The server listens on the namespace's loopback: the test's own namespace does not see it.
    expect(await hostLoopbackAccepts(PRIMARY.port)).toBe(false);
  });

  it('serves a client in another namespace through the VIP', () => {
    expect(serverId(client, VIP).stdout).toBe(`${PRIMARY.port}\n`);
    const w = sqlFrom(
      client,
      VIP,
      SERVICE_PORT,
      'CREATE DATABASE IF NOT EXISTS fo; CREATE TABLE IF NOT EXISTS fo.t (id INT PRIMARY KEY); REPLACE INTO fo.t VALUES (1); SELECT COUNT(*) FROM fo.t',
    );
    expect(w).toMatchObject({ ok: true, stdout: '1\n' });
    expect(neighbourMac(client, VIP)).toBe(macOf(primary));
  });

  it('moves the service with the VIP, and gratuitous ARP updates the client at once', () => {
    const t0 = Date.now();
    vipDel(primary, VIP_CIDR);
    vipAdd(standby, VIP_CIDR);
    // No waiting for the client's ARP entry to expire: the announcement already replaced it.
    expect(neighbourMac(client, VIP)).toBe(macOf(standby));
    expect(serverId(client, VIP)).toMatchObject({ ok: true, stdout: `${STANDBY.port}\n` });
    expect(Date.now() - t0).toBeLessThan(15_000);
    // The old primary is still there on its own address, no longer on the VIP.
    expect(serverId(client, primary.addr).stdout).toBe(`${PRIMARY.port}\n`);
    expect(sqlFrom(client, VIP, SERVICE_PORT, 'SHOW DATABASES LIKE "fo"').stdout).toBe('');
  });

  it('makes a host unreachable when its link is cut, and reachable again when healed', () => {
    cut(standby);
    try {
      const t0 = Date.now();
      const r = serverId(client, VIP);
      expect(r.ok).toBe(false);
      expect(r.stderr).toMatch(/Can't connect|Lost connection|timed out|Connection timed out/i);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1500); // silent loss: a timeout, not a refusal
      expect(serverId(witness, standby.addr).ok).toBe(false);
      expect(serverId(client, primary.addr).ok).toBe(true); // the rest of the network is untouched
    } finally {
      heal(standby);
    }
    expect(serverId(client, VIP)).toMatchObject({ ok: true, stdout: `${STANDBY.port}\n` });
  });

  it('blocks one pair of hosts only', () => {
    block(client, standby);
    try {
      expect(serverId(client, VIP).ok).toBe(false); // the VIP is on the standby: its replies cannot reach the client
      expect(serverId(client, standby.addr).ok).toBe(false);
      expect(serverId(witness, standby.addr)).toMatchObject({ ok: true, stdout: `${STANDBY.port}\n` });
      expect(serverId(witness, VIP).ok).toBe(true);
    } finally {
      unblock(client, standby);
    }
    expect(serverId(client, standby.addr).ok).toBe(true);
  });
});

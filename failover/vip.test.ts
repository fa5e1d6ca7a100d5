import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunResult } from './command.ts';
import {
  garpArgv,
  garpSent,
  isAddressAbsent,
  isAlreadyAssigned,
  parseCidr,
  parseIpAddrShow,
  vipAdd,
  vipDel,
  vipHeld,
} from './vip.ts';

// Real output of iproute2 6.1 (`ip -4 -o addr show`), with a VIP as a secondary address.
const SHOW = [
  '1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever',
  '2: eth0    inet 10.231.0.11/24 scope global eth0\\       valid_lft forever preferred_lft forever',
  '2: eth0    inet 10.231.0.100/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever',
  '7: bond0.12@bond0    inet 192.168.12.5/22 brd 192.168.15.255 scope global dynamic bond0.12\\       valid_lft 3599sec preferred_lft 3599sec',
  '',
].join('\n');

describe('parsing', () => {
  it('parses ip -4 -o addr show', () => {
    expect(parseIpAddrShow(SHOW)).toEqual([
      { ifname: 'lo', ip: '127.0.0.1', prefix: 8, secondary: false },
      { ifname: 'eth0', ip: '10.231.0.11', prefix: 24, secondary: false },
      { ifname: 'eth0', ip: '10.231.0.100', prefix: 24, secondary: true },
      { ifname: 'bond0.12', ip: '192.168.12.5', prefix: 22, secondary: false },
    ]);
    expect(parseIpAddrShow('Device "eth9" does not exist.\n')).toEqual([]);
    expect(parseIpAddrShow('2: eth0    inet6 fe80::1/64 scope link')).toEqual([]);
  });

  it('parses and refuses CIDRs', () => {
    expect(parseCidr('10.0.0.50/24')).toEqual({ ip: '10.0.0.50', prefix: 24 });
    for (const bad of ['10.0.0.50', '10.0.0.256/24', '10.0.0.5/33', 'eth0', '10.0.0.5/24 ']) {
      expect(() => parseCidr(bad)).toThrow(/not an IPv4 address with a prefix length/);
    }
  });

  it('recognises "already there" and "not there" in both iproute2 wordings', () => {
    expect(isAlreadyAssigned('Error: ipv4: Address already assigned.')).toBe(true);
    expect(isAlreadyAssigned('RTNETLINK answers: File exists')).toBe(true);
    expect(isAlreadyAssigned('Cannot find device "eth9"')).toBe(false);
    expect(isAddressAbsent('Error: ipv4: Address not found.')).toBe(true);
    expect(isAddressAbsent('RTNETLINK answers: Cannot assign requested address')).toBe(true);
    expect(isAddressAbsent('RTNETLINK answers: Operation not permitted')).toBe(false);
  });

  it('builds the arping command and reads its outcome', () => {
    expect(garpArgv({ interface: 'eth0', garpCount: 3 }, '10.0.0.50', 'request')).toEqual([
      'arping',
      '-U',
      '-c',
      '3',
      '-I',
      'eth0',
      '10.0.0.50',
    ]);
    expect(garpArgv({ interface: 'eth0', garpCount: 1 }, '10.0.0.50', 'reply')[1]).toBe('-A');
    const r = (code: number, stdout = ''): RunResult => ({
      code,
      signal: null,
      stdout,
      stderr: '',
      timedOut: false,
      aborted: false,
      durationMs: 1,
    });
    expect(garpSent(r(0), 3)).toBe(true);
    expect(garpSent(r(1, 'Sent 3 probes (3 broadcast(s))\nReceived 0 response(s)\n'), 3)).toBe(true);
    expect(garpSent(r(1, 'Sent 1 probes (1 broadcast(s))\n'), 3)).toBe(false);
    expect(garpSent(r(2), 3)).toBe(false);
  });
});

// Fake `ip` and `arping` on a PATH given through `via`: the command flow without root or a network.
const FAKE_IP = `#!/usr/bin/env bash
state="$FAKE_DIR/addrs"; touch "$state"
echo "ip $*" >> "$FAKE_DIR/calls"
case "$*" in
  "addr add "*) if grep -qx "$3" "$state"; then echo "Error: ipv4: Address already assigned." >&2; exit 2; fi
                [ -f "$FAKE_DIR/deny" ] && { echo "RTNETLINK answers: Operation not permitted" >&2; exit 2; }
                echo "$3" >> "$state" ;;
  "addr del "*) grep -qx "$3" "$state" || { echo "Error: ipv4: Address not found." >&2; exit 2; }
                grep -vx "$3" "$state" > "$state.new"; mv "$state.new" "$state" ;;
  "-4 -o addr show dev "*) [ "$6" = eth0 ] || { echo "Device \\"$6\\" does not exist." >&2; exit 1; }
                while read -r a; do echo "2: eth0    inet $a scope global eth0\\\\       valid_lft forever"; done < "$state" ;;
  *) echo "fake ip: unexpected $*" >&2; exit 9 ;;
esac
`;
const FAKE_ARPING = `#!/usr/bin/env bash
echo "arping $*" >> "$FAKE_DIR/calls"
if [ -f "$FAKE_DIR/arping-fails" ]; then echo "arping: Device eth0 not available." >&2; exit 2; fi
echo "Sent $3 probes ($3 broadcast(s))"; echo "Received 0 response(s)"; exit 1
`;

describe('vipAdd / vipHeld / vipDel against fake ip and arping', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tm-vip-'));
  const via = ['env', `PATH=${dir}:${process.env['PATH']}`, `FAKE_DIR=${dir}`];
  const spec = { address: '10.0.0.50/24', interface: 'eth0', garpCount: 2 };
  const calls = () => readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n');
  for (const [name, body] of [
    ['ip', FAKE_IP],
    ['arping', FAKE_ARPING],
  ] as const) {
    writeFileSync(join(dir, name), body);
    chmodSync(join(dir, name), 0o755);
  }
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(() => {
    for (const f of ['addrs', 'calls', 'deny', 'arping-fails']) rmSync(join(dir, f), { force: true });
    writeFileSync(join(dir, 'addrs'), '10.0.0.11/24\n');
  });

  it('adds, confirms, announces; adding again is success; deletes; deleting again is success', async () => {
    const opts = { timeoutMs: 5000, via };
    expect(await vipHeld(spec, opts)).toBe(false);
    const added = await vipAdd(spec, opts);
    expect(added).toEqual({ already: false, detail: expect.stringContaining('VIP 10.0.0.50/24 added to eth0') });
    expect(added.detail).toContain('2 gratuitous ARP requests (-U) sent');
    expect(calls()).toEqual([
      'ip -4 -o addr show dev eth0',
      'ip addr add 10.0.0.50/24 dev eth0',
      'ip -4 -o addr show dev eth0',
      'arping -U -c 2 -I eth0 10.0.0.50',
    ]);
    expect(await vipHeld(spec, opts)).toBe(true);
    expect((await vipAdd(spec, opts)).already).toBe(true);
    expect(await vipDel(spec, opts)).toMatchObject({ already: false });
    expect(await vipHeld(spec, opts)).toBe(false);
    expect(await vipDel(spec, opts)).toMatchObject({
      already: true,
      detail: 'VIP 10.0.0.50/24 was not on eth0 (via env PATH=' + `${dir}:${process.env['PATH']} FAKE_DIR=${dir})`,
    });
  });

  it('errors name the command and its stderr', async () => {
    writeFileSync(join(dir, 'deny'), '');
    await expect(vipAdd(spec, { timeoutMs: 5000, via })).rejects.toThrow(
      /^cannot add VIP 10\.0\.0\.50\/24 on eth0: env .* ip addr add 10\.0\.0\.50\/24 dev eth0: exited with 2: RTNETLINK answers: Operation not permitted$/,
    );
    await expect(vipHeld({ ...spec, interface: 'eth9' }, { timeoutMs: 5000, via })).rejects.toThrow(
      /ip -4 -o addr show dev eth9: exited with 1: Device "eth9" does not exist\./,
    );
  });

  it('a failed announcement is an error that says the VIP is held', async () => {
    writeFileSync(join(dir, 'arping-fails'), '');
    await expect(vipAdd(spec, { timeoutMs: 5000, via })).rejects.toThrow(
      /^VIP 10\.0\.0\.50\/24 is on eth0, but its gratuitous ARP failed: .*arping -U -c 2 -I eth0 10\.0\.0\.50: exited with 2: arping: Device eth0 not available\.$/,
    );
  });

  it('refuses a bad interface name before running anything', async () => {
    await expect(vipAdd({ ...spec, interface: 'eth0; reboot' }, { timeoutMs: 5000, via })).rejects.toThrow(
      /not a network interface name/,
    );
  });
});

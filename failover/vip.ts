/**
 * The virtual IP (issue #5): added on the new primary's host, removed from the old one's, announced with
 * gratuitous ARP so the neighbours (switch, router, clients on the segment) update their caches at once instead
 * of when their entries expire. Linux only: iproute2's `ip` and iputils' `arping`.
 *
 *   add     ip addr add 10.0.0.50/24 dev eth0          "Address already assigned" / "File exists": success
 *           ip -4 -o addr show dev eth0                 confirms the address is there
 *           arping -U -c N -I eth0 10.0.0.50            unsolicited ARP requests, sender = target = the VIP,
 *                                                       1 s apart (so N × 1 s of the step's time)
 *   del     ip addr del 10.0.0.50/24 dev eth0          "Address not found" / "Cannot assign…": success
 *   held    ip -4 -o addr show dev eth0                 is the address on the interface?
 *
 * ARP mode: `-U` (ARP request) by default, as RFC 5227 §3 recommends for announcements; `-A` (ARP reply) for the
 * rare equipment that ignores gratuitous requests. iputils 20221126 exits 0 after sending in both modes; older
 * iputils exit 1 because no reply came (none is expected): exit 1 with "Sent N probes" counts as sent too.
 *
 * `via` prefixes every command, to run it elsewhere: `['ip', 'netns', 'exec', 'tm-a']` (tests), or an ssh
 * invocation for the old primary's host (`['ssh', '-o', 'BatchMode=yes', 'root@db1', '--']`: ssh joins the
 * arguments into one remote shell line; they are safe here, the address and interface are validated).
 */
import { TidemarkError } from '../core/errors.ts';
import { describeResult, formatArgv, type RunResult, runCommand } from './command.ts';
import type { StepReport } from './plan.ts';

export interface VipSpec {
  /** IPv4 address with its prefix length: "10.0.0.50/24". */
  readonly address: string;
  readonly interface: string;
  /** Gratuitous ARP packets sent after adding (1 s apart). */
  readonly garpCount: number;
}

export interface VipOptions {
  /** Bound of the whole operation (every command in it). */
  readonly timeoutMs: number;
  /** Prefix of every command (run in a namespace, over ssh). */
  readonly via?: readonly string[];
  /** Gratuitous ARP as requests (`-U`, default) or replies (`-A`). */
  readonly garpMode?: 'request' | 'reply';
  readonly signal?: AbortSignal;
}

export interface VipReport extends StepReport {
  /** The address was on the interface already (add) or absent already (del). */
  readonly already: boolean;
}

export interface Cidr {
  readonly ip: string;
  readonly prefix: number;
}

export function parseCidr(s: string): Cidr {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(s);
  if (!m || m.slice(1, 5).some((o) => Number(o) > 255) || Number(m[5]) > 32) {
    throw new TidemarkError(`not an IPv4 address with a prefix length: "${s}" (e.g. "10.0.0.50/24")`, {
      code: 'CONFIG',
    });
  }
  return { ip: m.slice(1, 5).map(Number).join('.'), prefix: Number(m[5]) };
}

export interface IfAddr {
  readonly ifname: string;
  readonly ip: string;
  readonly prefix: number;
  readonly secondary: boolean;
}

/**
 * Lines of `ip -4 -o addr show [dev IF]`, e.g.
 *   2: eth0    inet 10.231.0.100/24 scope global secondary eth0\       valid_lft forever preferred_lft forever
 * Lines that are not IPv4 addresses are ignored.
 */
export function parseIpAddrShow(out: string): IfAddr[] {
  const addrs: IfAddr[] = [];
  for (const line of out.split('\n')) {
    const m = /^\d+:\s+(\S+?)(?:@\S+)?\s+inet\s+(\d+\.\d+\.\d+\.\d+)\/(\d+)\s*(.*)$/.exec(line.trim());
    if (!m) continue;
    const rest = (m[4] ?? '').split('\\')[0] ?? '';
    addrs.push({
      ifname: m[1]!,
      ip: m[2]!,
      prefix: Number(m[3]),
      secondary: /\bsecondary\b/.test(rest),
    });
  }
  return addrs;
}

/** `ip addr add` failed because the address is there already (iproute2 ≥ 5.x wording, then older). */
export const isAlreadyAssigned = (stderr: string): boolean => /Address already assigned|File exists/i.test(stderr);
/** `ip addr del` failed because the address is not there. */
export const isAddressAbsent = (stderr: string): boolean =>
  /Address not found|Cannot assign requested address/i.test(stderr);

export function garpArgv(
  spec: Pick<VipSpec, 'interface' | 'garpCount'>,
  ip: string,
  mode: 'request' | 'reply',
): string[] {
  return ['arping', mode === 'reply' ? '-A' : '-U', '-c', String(spec.garpCount), '-I', spec.interface, ip];
}

/** Did arping send its announcements? Exit 0, or exit 1 (old iputils: no reply, none expected) having sent all. */
export function garpSent(r: RunResult, count: number): boolean {
  if (r.code === 0) return true;
  const sent = /Sent (\d+) probes?/.exec(r.stdout);
  return r.code === 1 && sent !== null && Number(sent[1]) >= count;
}

function checkInterface(name: string): void {
  if (!/^[A-Za-z0-9_.:-]{1,15}$/.test(name)) {
    throw new TidemarkError(`not a network interface name: "${name}"`, { code: 'CONFIG' });
  }
}

/** Runs commands against one deadline; a failure names the command and its stderr. */
class Runner {
  readonly #opts: VipOptions;
  readonly #deadline: number;

  constructor(opts: VipOptions) {
    this.#opts = opts;
    this.#deadline = performance.now() + opts.timeoutMs;
  }

  async run(argv: string[]): Promise<RunResult & { argv: string[] }> {
    const full = [...(this.#opts.via ?? []), ...argv];
    const left = Math.max(1, Math.round(this.#deadline - performance.now()));
    const r = await runCommand(full, {
      timeoutMs: left,
      ...(this.#opts.signal ? { signal: this.#opts.signal } : {}),
    }).catch((err: unknown) => {
      const hint = argv[0] === 'arping' ? ' (install iputils-arping)' : argv[0] === 'ip' ? ' (install iproute2)' : '';
      throw new TidemarkError(`${formatArgv(full)} could not start${hint}`, { code: 'VIP_COMMAND', cause: err });
    });
    return { ...r, argv: full };
  }

  fail(r: RunResult & { argv: string[] }, what: string): TidemarkError {
    return new TidemarkError(`${what}: ${describeResult(r.argv, r)}`, {
      code: 'VIP_COMMAND',
      retriable: r.timedOut,
      context: { exitCode: r.code, timedOut: r.timedOut },
    });
  }
}

async function addrsOn(runner: Runner, iface: string): Promise<IfAddr[]> {
  const r = await runner.run(['ip', '-4', '-o', 'addr', 'show', 'dev', iface]);
  if (r.code !== 0) throw runner.fail(r, `cannot list the addresses of ${iface}`);
  return parseIpAddrShow(r.stdout);
}

/** Is the VIP's address on the interface (whatever its prefix length)? */
export async function vipHeld(spec: Pick<VipSpec, 'address' | 'interface'>, opts: VipOptions): Promise<boolean> {
  const { ip } = parseCidr(spec.address);
  checkInterface(spec.interface);
  const addrs = await addrsOn(new Runner(opts), spec.interface);
  return addrs.some((a) => a.ip === ip);
}

/**
 * Adds the VIP to the interface (present already: fine), confirms it is listed, then announces it with
 * gratuitous ARP. Throws when the address could not be added, or was added but the announcement failed (the
 * message says which: in the latter case the host holds the VIP, neighbours learn it when their cache expires).
 */
export async function vipAdd(spec: VipSpec, opts: VipOptions): Promise<VipReport> {
  const { ip } = parseCidr(spec.address);
  checkInterface(spec.interface);
  const runner = new Runner(opts);
  const add = await runner.run(['ip', 'addr', 'add', spec.address, 'dev', spec.interface]);
  const already = add.code !== 0 && isAlreadyAssigned(add.stderr);
  if (add.code !== 0 && !already) throw runner.fail(add, `cannot add VIP ${spec.address} on ${spec.interface}`);
  if (!(await addrsOn(runner, spec.interface)).some((a) => a.ip === ip)) {
    throw new TidemarkError(`VIP ${spec.address} is not listed on ${spec.interface} after ip addr add succeeded`, {
      code: 'VIP_COMMAND',
    });
  }
  const mode = opts.garpMode ?? 'request';
  const garp = await runner.run(garpArgv(spec, ip, mode));
  if (!garpSent(garp, spec.garpCount)) {
    throw runner.fail(garp, `VIP ${spec.address} is on ${spec.interface}, but its gratuitous ARP failed`);
  }
  const where = opts.via?.length ? ` (via ${formatArgv(opts.via)})` : '';
  return {
    already,
    detail:
      `VIP ${spec.address} ${already ? 'already on' : 'added to'} ${spec.interface}${where}, ` +
      `${spec.garpCount} gratuitous ARP ${mode === 'reply' ? 'replies (-A)' : 'requests (-U)'} sent`,
  };
}

/** Removes the VIP from the interface; absent already is success. */
export async function vipDel(spec: Pick<VipSpec, 'address' | 'interface'>, opts: VipOptions): Promise<VipReport> {
  const { ip } = parseCidr(spec.address);
  checkInterface(spec.interface);
  const runner = new Runner(opts);
  const del = await runner.run(['ip', 'addr', 'del', spec.address, 'dev', spec.interface]);
  const already = del.code !== 0 && isAddressAbsent(del.stderr);
  if (del.code !== 0 && !already) throw runner.fail(del, `cannot remove VIP ${spec.address} from ${spec.interface}`);
  // `ip addr del` matches the prefix length too: the same address with another prefix would still answer ARP.
  const left = (await addrsOn(runner, spec.interface)).find((a) => a.ip === ip);
  if (left) {
    throw new TidemarkError(
      `VIP address ${ip} is still on ${spec.interface} as ${ip}/${left.prefix} after removing ${spec.address}`,
      { code: 'VIP_COMMAND' },
    );
  }
  const where = opts.via?.length ? ` (via ${formatArgv(opts.via)})` : '';
  return {
    already,
    detail: `VIP ${spec.address} ${already ? 'was not on' : 'removed from'} ${spec.interface}${where}`,
  };
}

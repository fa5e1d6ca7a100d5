/**
 * The `failover:` section of the config file (issue #5): monitor thresholds, the busy/idle calendar, the
 * witness, the election, anti-flapping, the VIP, fencing and alert hooks. Every key has a default except the
 * witness (required for automatic mode) and the VIP (absent: no VIP is moved). The config loader adds
 * `failover: failoverSchema.optional()` to the file's schema; cross-checks that need the rest of the file
 * (priority names are standby names) belong there.
 *
 *   failover:
 *     mode: automatic                       # or manual (default): alerts only, `tidemark failover` acts
 *     monitor: { suspect_after: 2, fail_after_count: 3, fail_after_ms: 10000, recover_after: 3,
 *                suspect_interval_ms: 500, probe_timeout_ms: 2000, overall: all,
 *                heartbeat: { table: tidemark.heartbeat }, tcp: [{ name: app, address: "10.0.0.5:8080" }] }
 *     calendar: { time_zone: Europe/Paris, default_interval_ms: 5000,
 *                 windows: [{ days: mon-fri, from: "08:00", to: "20:00", interval_ms: 1000 }] }
 *     witness: { address: "witness.example:7410", max_age_ms: 5000 }
 *     election: { unknown_standbys: wait, priority: { dr1: 10 } }
 *     min_interval_ms: 3600000              # at most one automatic takeover that promoted per hour
 *     takeover_retry: { initial_ms: 1000, max_ms: 15000 }   # an attempt stopped before promotion: retried
 *     vip: { address: 10.0.0.50/24, interface: eth0, garp_count: 3 }
 *     fence: { read_only: true, kill_sessions: true, command: [/usr/local/bin/stonith, primary],
 *              margin_ms: 2500, confirm_for_ms: 5000 }  # the fence timeline (failover/timeline.ts)
 *     hooks: { webhook: { url_env: TIDEMARK_ALERT_URL }, command: [/usr/local/bin/page-oncall] }
 */
import { z } from 'zod';
import { accountSchema } from '../mysql/endpoint.ts';
import { ConfigError } from '../core/errors.ts';
import { compileCalendar } from './calendar.ts';

const ms = (min: number, max: number) => z.number().int().min(min).max(max);

/** "host:port" (IPv6 in brackets), as for the ship addresses of the sites; one message for both parts. */
const hostPort = z.string().refine((s) => {
  if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$/.test(s)) return false;
  const p = Number(s.slice(s.lastIndexOf(':') + 1));
  return p >= 1 && p <= 65535;
}, 'a "host:port" address with a port of 1-65535');

/** An argv: the program and its arguments, run without a shell. */
const argv = z.array(z.string().min(1)).min(1, 'a command as a list: [program, arg, …]');

const ipv4Cidr = z.string().refine((s) => {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(s);
  if (!m) return false;
  return m.slice(1, 5).every((o) => Number(o) <= 255) && Number(m[5]) <= 32;
}, 'an IPv4 address with its prefix length, e.g. "10.0.0.50/24"');

const thresholds = {
  suspect_after: z.number().int().min(1).max(1000).default(2),
  fail_after_count: z.number().int().min(1).max(1000).default(3),
  fail_after_ms: ms(0, 3_600_000).default(1500),
  recover_after: z.number().int().min(1).max(1000).default(3),
};

const monitorSchema = z
  .object({
    ...thresholds,
    /** Probe interval while the primary is suspect or failed. */
    suspect_interval_ms: ms(50, 60_000).default(100),
    /** A probe that has not answered within this is a failure. */
    probe_timeout_ms: ms(50, 120_000).default(1000),
    /** The primary is failed when every critical probe failed (`all`) or any of them (`any`). */
    overall: z.enum(['all', 'any']).default('all'),
    heartbeat: z
      .object({
        /** The table written on the primary (created if missing); its timestamps also measure lag. */
        table: z
          .string()
          .regex(/^[A-Za-z0-9_$]{1,64}\.[A-Za-z0-9_$]{1,64}$/, 'a "schema.table" name')
          .default('tidemark.heartbeat'),
        critical: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    /**
     * The ship link from the primary. Not critical by default: it is tidemark's own process at the primary's
     * site, which stays up (and keeps the link alive) when only the database died.
     */
    link: z
      .object({ enabled: z.boolean().default(true), critical: z.boolean().default(false) })
      .strict()
      .prefault({}),
    tcp: z
      .array(
        z
          .object({
            name: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, '1-32 letters, digits, "_" or "-"'),
            address: hostPort,
            critical: z.boolean().default(false),
          })
          .strict(),
      )
      .default([]),
  })
  .strict()
  .refine((m) => m.suspect_after <= m.fail_after_count, {
    message: 'suspect_after must not exceed fail_after_count (a probe is suspect before it is failed)',
    path: ['suspect_after'],
  });

const calendarSchema = z
  .object({
    time_zone: z.string().min(1).default('UTC'),
    default_interval_ms: ms(50, 3_600_000).default(300),
    windows: z
      .array(
        z
          .object({
            name: z.string().min(1).optional(),
            days: z.string().min(1),
            from: z.string(),
            to: z.string(),
            interval_ms: ms(50, 3_600_000),
          })
          .strict(),
      )
      .default([]),
  })
  .strict()
  .superRefine((c, ctx) => {
    try {
      compileCalendar(c, '');
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      // The message is ".windows[1].from: …": turn the key into a path, keep the rest.
      const m = /^\.([^:]+): (.*)$/s.exec(err.message);
      const path = (m?.[1] ?? '')
        .split(/[.[\]]+/)
        .filter(Boolean)
        .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
      ctx.addIssue({ code: 'custom', message: m?.[2] ?? err.message, path });
    }
  });

const webhookSchema = z
  .object({
    /** The URL inline, or from an environment variable (URLs often carry a token). */
    url: z.url({ protocol: /^https?$/, error: 'an http:// or https:// URL' }).optional(),
    url_env: z.string().min(1).optional(),
    timeout_ms: ms(100, 60_000).default(5000),
  })
  .strict()
  .refine((w) => (w.url === undefined) !== (w.url_env === undefined), { message: 'give exactly one of url, url_env' });

export const failoverSchema = z
  .object({
    mode: z.enum(['automatic', 'manual']).default('manual'),
    /**
     * Needs on every server that may be primary: READ_ONLY ADMIN to set read_only, CONNECTION ADMIN and
     * PROCESS to find and kill sessions when fencing, SELECT, INSERT, UPDATE on the heartbeat table's schema
     * (plus CREATE until the table exists), and BINLOG MONITOR to read the promotion position.
     */
    /** The database account the monitor, fencing and promotion use on the primary and the standbys' servers. */
    account: accountSchema,
    monitor: monitorSchema.prefault({}),
    calendar: calendarSchema.prefault({}),
    witness: z
      .object({
        address: hostPort,
        /** A witness view older than this does not count (no automatic takeover). */
        max_age_ms: ms(100, 600_000).default(5000),
      })
      .strict()
      .optional(),
    election: z
      .object({
        /** A standby whose position is unknown: every standby waits (default), or it is left out. */
        unknown_standbys: z.enum(['wait', 'ignore']).default('wait'),
        /** Standby name → priority; higher wins between standbys at the same position. Default 0. */
        priority: z.record(z.string().min(1), z.number().int().min(-1000).max(1000)).default({}),
        /** Both the standby and the witness must have seen the primary failed at least this long. */
        agree_for_ms: ms(0, 3_600_000).default(0),
      })
      .strict()
      .prefault({}),
    /**
     * At most one automatic takeover that PROMOTED per this period (anti-flapping). Default 1 hour. An attempt
     * that stopped before promotion (fence not confirmed, drain failed) does not count: it is retried.
     */
    min_interval_ms: ms(0, 30 * 86_400_000).default(3_600_000),
    /**
     * An automatic attempt that stopped before promotion is retried while the primary stays lost and the
     * witness agrees, after initial_ms, doubling up to max_ms between attempts.
     */
    takeover_retry: z
      .object({
        initial_ms: ms(100, 600_000).default(1000),
        max_ms: ms(100, 3_600_000).default(15_000),
      })
      .strict()
      .refine((r) => r.initial_ms <= r.max_ms, { message: 'initial_ms must not exceed max_ms' })
      .prefault({}),
    vip: z
      .object({
        address: ipv4Cidr,
        interface: z.string().regex(/^[A-Za-z0-9_.:-]{1,15}$/, 'a network interface name (1-15 characters)'),
        /** Gratuitous ARP announcements sent after the VIP is added (1 s apart: keep below timeouts.vip_ms). */
        garp_count: z.number().int().min(1).max(20).default(3),
        /**
         * How to run `ip` on the old primary's host to drop the VIP there during a takeover (best effort), e.g.
         * [ssh, -o, BatchMode=yes, root@db1, --]. Absent: only the old site's own guard drops it.
         */
        old_primary_via: argv.optional(),
      })
      .strict()
      .optional(),
    fence: z
      .object({
        /** On a reachable old primary: SET GLOBAL read_only=ON (MariaDB has no super_read_only: accounts with READ_ONLY ADMIN still write). */
        read_only: z.boolean().default(true),
        kill_sessions: z.boolean().default(true),
        /** Always run during a takeover (power off, cut the port…); exit 0 confirms the fence. */
        command: argv.optional(),
        timeout_ms: ms(100, 600_000).default(30_000),
        /**
         * The fence timeline (failover/README.md): an isolated primary's guard fences itself at its last contact
         * + monitor.fail_after_ms; a standby asks the fence command to confirm at once, and again from the
         * latest contact it or the witness had with the primary + fail_after_ms + margin_ms. Default: the
         * longest probe interval of the calendar + probe_timeout_ms + 500 ms (the guard's own fencing).
         */
        margin_ms: ms(0, 600_000).optional(),
        /** From that moment, the confirmation is retried (250 ms doubling, at most 2 s apart) this long. */
        confirm_for_ms: ms(0, 600_000).default(5000),
      })
      .strict()
      .prefault({}),
    hooks: z
      .object({
        webhook: webhookSchema.optional(),
        /** Run for every transition and takeover; the event as JSON on stdin. */
        command: argv.optional(),
      })
      .strict()
      .prefault({}),
    /** Per-step limits of a takeover. */
    timeouts: z
      .object({
        drain_ms: ms(100, 3_600_000).default(300_000),
        promote_ms: ms(100, 600_000).default(30_000),
        vip_ms: ms(100, 600_000).default(10_000),
        repoint_ms: ms(100, 600_000).default(60_000),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .refine((f) => f.mode !== 'automatic' || f.witness !== undefined, {
    message: 'automatic mode needs a witness (witness.address): a standby never takes over on its own view alone',
    path: ['witness'],
  });

export type FailoverConfig = z.infer<typeof failoverSchema>;
export type FailoverConfigInput = z.input<typeof failoverSchema>;

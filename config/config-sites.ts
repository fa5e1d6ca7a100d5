/**
 * The sites part of the config file (issue #3): the primary's site name, how the journal is shipped (`ship`),
 * and the standby sites (`standbys`). Validated with the rest of the file by config/config.ts; cross-checks that
 * need the whole file (a target's `site` names a known site, names and addresses are unique) are here too.
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../core/errors.ts';

const siteName = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9-]{0,62}$/,
    'a site name: 1-63 letters, digits or "-", starting with a letter or digit',
  );

/** "host:port" (IPv6 in brackets). */
const hostPort = z
  .string()
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$/, 'a "host:port" address')
  .refine((s) => {
    const p = Number(s.slice(s.lastIndexOf(':') + 1));
    return p >= 1 && p <= 65535;
  }, 'a port of 1-65535');

const common = {
  name: siteName,
  /** The mirror journals at the standby site: one per source, `<journal_dir>/<source name>`. */
  journal_dir: z.string().min(1),
};

const tcpStandby = z
  .object({
    ...common,
    transport: z.literal('tcp').default('tcp'),
    /** Where the primary connects to this standby's receiver. */
    address: hostPort,
    /** Where the receiver listens; default 0.0.0.0 and the port of `address`. */
    listen: hostPort.optional(),
  })
  .strict();

const kafkaStandby = z
  .object({
    ...common,
    transport: z.literal('kafka'),
    brokers: z.array(hostPort).min(1),
    /** Default tidemark.<source>.<standby>: one topic per source and standby. */
    topic: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,249}$/, 'a Kafka topic name')
      .optional(),
    client_id: z.string().min(1).default('tidemark'),
  })
  .strict();

const redisStandby = z
  .object({
    ...common,
    transport: z.literal('redis'),
    address: hostPort,
    /** Default tidemark:{<source>.<standby>}. */
    key: z.string().min(1).optional(),
    db: z.number().int().min(0).max(15).default(0),
    /** Redis AUTH password from an environment variable (never inline). */
    password_env: z.string().min(1).optional(),
    /** A server without appendonly yes + appendfsync always: refuse (default) or only warn loudly. */
    durability: z.enum(['refuse', 'warn']).default('refuse'),
  })
  .strict();

export const standbySchema = z.discriminatedUnion('transport', [tcpStandby, kafkaStandby, redisStandby], {
  error: () => 'expected "tcp", "kafka" or "redis"',
});

/** Input may omit `transport` (tcp); the discriminated union needs it, so it is filled in first. */
export const standbysSchema = z.preprocess(
  (v) =>
    Array.isArray(v)
      ? v.map((s) => (s && typeof s === 'object' && !('transport' in s) ? { ...s, transport: 'tcp' } : s))
      : v,
  z.array(standbySchema),
);

export const shipSchema = z
  .object({
    /** Directory with ca.crt, <site>.crt and <site>.key (made by `tidemark certs`). Required for tcp standbys. */
    certs_dir: z.string().min(1).optional(),
    /** TCP without TLS (inside a tunnel, or tests): no encryption and no authentication. */
    plaintext: z.boolean().default(false),
    heartbeat_ms: z.number().int().min(50).max(60_000).default(1000),
    connect_timeout_ms: z.number().int().min(100).max(600_000).optional(),
    batch_bytes: z
      .number()
      .int()
      .min(4096)
      .max(64 << 20)
      .default(1 << 20),
    window_bytes: z
      .number()
      .int()
      .min(65536)
      .max(1 << 30)
      .default(8 << 20),
    /** Journal bytes kept for a standby that is behind, at most (then `at_cap`). Default 10 GiB. */
    cap_bytes: z
      .number()
      .int()
      .min(1 << 20)
      .default(10 * 2 ** 30),
    /** Warn (log, metric, status) when a standby holds this fraction of cap_bytes. */
    alarm_at: z.number().gt(0).lt(1).default(0.8),
    /** At the cap: release the journal and mark the standby as needing a rebaseline, or pause capture. */
    at_cap: z.enum(['drop-standby', 'stop-capture']).default('drop-standby'),
  })
  .strict();

export type StandbyConfig = z.infer<typeof standbySchema>;
export type TcpStandby = z.infer<typeof tcpStandby>;
export type KafkaStandby = z.infer<typeof kafkaStandby>;
export type RedisStandby = z.infer<typeof redisStandby>;
export type ShipConfig = z.infer<typeof shipSchema>;

export const DEFAULT_SITE = 'primary';

/** Port of a validated "host:port". */
export function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

/** Host of a validated "host:port" (brackets of an IPv6 address removed). */
export function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1');
}

interface SitesInput {
  site: string;
  ship: ShipConfig;
  standbys: StandbyConfig[];
  targets: readonly { name: string; site?: string | undefined }[];
}

/**
 * Cross-checks and path resolution. Returns the standbys with journal_dir resolved against the config file's
 * directory, and ship.certs_dir likewise.
 */
export function checkSites(
  c: SitesInput,
  file: string,
  baseDir: string,
): { ship: ShipConfig; standbys: StandbyConfig[] } {
  const fail = (key: string, msg: string) => {
    throw new ConfigError(`${file}: ${key}: ${msg}`, { file, key });
  };
  const names = new Set<string>([c.site]);
  const listens = new Map<string, string>();
  const dirs = new Map<string, string>();
  for (const [i, s] of c.standbys.entries()) {
    if (names.has(s.name)) {
      fail(
        `standbys.${i}.name`,
        s.name === c.site ? `"${s.name}" is the primary's site name` : `"${s.name}" is used twice`,
      );
    }
    names.add(s.name);
    const dir = resolve(baseDir, s.journal_dir);
    const other = dirs.get(dir);
    if (other !== undefined) fail(`standbys.${i}.journal_dir`, `the same directory as standby ${other}`);
    dirs.set(dir, s.name);
    if (s.transport === 'tcp') {
      const listen = s.listen ?? `0.0.0.0:${portOf(s.address)}`;
      const port = String(portOf(listen));
      const first = listens.get(port);
      if (first !== undefined) fail(`standbys.${i}.listen`, `port ${port} is also standby ${first}'s`);
      listens.set(port, s.name);
      if (!c.ship.plaintext && c.ship.certs_dir === undefined) {
        fail('ship.certs_dir', `required for the tcp standby ${s.name} (or ship.plaintext: true, without TLS)`);
      }
    }
  }
  for (const [i, t] of c.targets.entries()) {
    if (t.site !== undefined && !names.has(t.site)) {
      fail(`targets.${i}.site`, `"${t.site}" is not a site of this file (sites: ${[...names].join(', ')})`);
    }
  }
  const ship = c.ship.certs_dir === undefined ? c.ship : { ...c.ship, certs_dir: resolve(baseDir, c.ship.certs_dir) };
  return { ship, standbys: c.standbys.map((s) => ({ ...s, journal_dir: resolve(baseDir, s.journal_dir) })) };
}

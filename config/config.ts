/**
 * The one config file (YAML), validated at start. Every error names the key path and what was expected.
 * Passwords are kept non-enumerable on the loaded object so they never reach a log line or JSON dump.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { type TargetConfig, targetSchema } from '../apply/mysql/config.ts';
import { type AdminConfig, type SourceConfig, sourceSchema } from '../capture/mysql/config.ts';
import { type BackupConfig, backupSchema } from '../backup/config.ts';
import { ConfigError } from '../core/errors.ts';
import { requireCapability, sourceAdapterOf, targetAdapterOf } from './engines.ts';
import { type ResolvedEndpoint, withPassword } from '../core/secret.ts';
import { type FailoverConfig, failoverSchema } from '../failover/config.ts';
import {
  checkSites,
  DEFAULT_SITE,
  type ShipConfig,
  type StandbyConfig,
  shipSchema,
  standbysSchema,
} from './config-sites.ts';
import { type PasswordKeys, portSchema } from '../mysql/endpoint.ts';

/**
 * The file's schema with MySQL source and targets (the default kind). parseConfig validates `source` and each
 * `targets` entry with the schema of the adapter its `kind` names instead (engine/registry.ts).
 */
export const configSchema = z
  .object({
    source: sourceSchema,
    journal: z
      .object({
        dir: z.string().min(1),
        fsync: z.enum(['transaction', 'group']).default('transaction'),
        group_commit_ms: z.number().int().min(1).max(1000).default(10),
        segment_bytes: z
          .number()
          .int()
          .min(1 << 20)
          .max(1 << 30)
          .default(64 << 20),
        retention: z
          .object({
            /** Keep acknowledged history at least this long (rewind needs history). */
            keep_hours: z.number().min(0).default(168),
          })
          .strict()
          .default({ keep_hours: 168 }),
      })
      .strict(),
    targets: z.array(targetSchema).min(1),
    /** The primary's site name (where source and journal are). */
    site: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,62}$/, 'a site name: 1-63 letters, digits or "-"')
      .default(DEFAULT_SITE),
    ship: shipSchema.default(shipSchema.parse({})),
    standbys: standbysSchema.default([]),
    /** Takeover (failover/config.ts): monitor, witness, fencing, VIP. Absent: no monitor runs. */
    failover: failoverSchema.optional(),
    rollback: z
      .object({
        /** Keep the rollback index (rewind, undo, log, history) current while `run` runs. */
        index: z.boolean().default(true),
      })
      .strict()
      .default({ index: true }),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
        file: z.string().optional(),
      })
      .strict()
      .default({ level: 'info' }),
    metrics: z
      .object({
        port: portSchema,
        host: z.string().default('127.0.0.1'),
      })
      .strict()
      .optional(),
    /** Scheduled backups (backup/config.ts). Absent: no backups. */
    backup: backupSchema.optional(),
  })
  .strict();

export type RawConfig = z.infer<typeof configSchema>;
export type JournalConfig = RawConfig['journal'];

export type ResolvedFailover = Omit<FailoverConfig, 'account'> & {
  readonly account: ResolvedEndpoint<FailoverConfig['account']>;
};

/**
 * A loaded config. `source` and `targets` are typed as the MySQL sections (every feature beyond the data path is
 * MySQL's today); a section of another kind holds what its adapter's schema gave, and only that adapter reads
 * more than its `kind` and `name` (the runtime goes through config/engines.ts for it).
 */
export interface Config {
  readonly file: string;
  readonly source: Omit<ResolvedEndpoint<SourceConfig>, 'admin'> & { readonly admin?: ResolvedEndpoint<AdminConfig> };
  readonly journal: JournalConfig;
  readonly targets: readonly ResolvedEndpoint<TargetConfig>[];
  readonly rollback: RawConfig['rollback'];
  /** The primary's site. */
  readonly site: string;
  readonly ship: ShipConfig;
  /** Standby sites; journal_dir resolved. */
  readonly standbys: readonly StandbyConfig[];
  /** Takeover settings; `account` with its password resolved (non-enumerable). */
  readonly failover?: ResolvedFailover | undefined;
  readonly log: RawConfig['log'];
  readonly metrics: RawConfig['metrics'];
  /** Backups; paths resolved, `catalog_dir` defaulted to `<journal.dir>/backup-catalog`. */
  readonly backup?: ResolvedBackup | undefined;
}

export type ResolvedBackup = BackupConfig & {
  readonly catalog_dir: string;
  /** For `kind: site` stores and `serve`: this config's site and its ship TLS settings. */
  readonly link: { readonly site: string; readonly certs_dir: string | undefined; readonly plaintext: boolean };
};

const MAX_ISSUES = 10;

function keyPath(path: readonly PropertyKey[]): string {
  return path.length ? path.map(String).join('.') : '(top level)';
}

/**
 * A key as it may be shown. A key that is not a plain name is often a value gone wrong (`{password:hunter2}` is
 * ONE key in YAML), so only a name-like part before a ":" is shown, never the rest.
 */
function showKey(key: string): string {
  if (/^[A-Za-z0-9_.-]{1,64}$/.test(key)) return key;
  const head = /^([A-Za-z0-9_]{1,64}):/.exec(key)?.[1];
  return head === undefined
    ? '(a key that is not a plain name; not shown)'
    : `${head}:… (a ":" needs a space after it)`;
}

/** One "key.path: what is wrong" line per problem. Never includes the offending value (it may be a secret). */
function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) lines.push(`${keyPath([...issue.path, showKey(k)])}: unknown key`);
    } else {
      lines.push(`${keyPath(issue.path)}: ${issue.message}`);
    }
  }
  if (lines.length <= MAX_ISSUES) return lines;
  return [...lines.slice(0, MAX_ISSUES), `and ${lines.length - MAX_ISSUES} more`];
}

/**
 * Password values a malformed config may still hold (inline `password`, or the variable `password_env` names),
 * to be masked in messages: a second line of defence behind messages that never quote values.
 */
function secretsIn(raw: object): string[] {
  const r = raw as { source?: unknown; targets?: unknown; failover?: unknown };
  const admin = r.source !== null && typeof r.source === 'object' ? (r.source as { admin?: unknown }).admin : undefined;
  const account =
    r.failover !== null && typeof r.failover === 'object' ? (r.failover as { account?: unknown }).account : undefined;
  const endpoints = [r.source, admin, account, ...(Array.isArray(r.targets) ? r.targets : [])];
  const out: string[] = [];
  for (const e of endpoints) {
    if (e === null || typeof e !== 'object') continue;
    const { password, password_env } = e as { password?: unknown; password_env?: unknown };
    if (typeof password === 'string' || typeof password === 'number') out.push(String(password));
    if (typeof password_env === 'string') {
      const v = process.env[password_env];
      if (v !== undefined) out.push(v);
    }
  }
  return out.filter((v) => v.length >= 4);
}

function mask(message: string, secrets: readonly string[]): string {
  return secrets.reduce((m, secret) => m.split(secret).join('[redacted]'), message);
}

/** The `kind` a raw section names, when it names one as a string (anything else is left to the schema). */
function kindOf(section: unknown): string | undefined {
  if (section === null || typeof section !== 'object') return undefined;
  const k = (section as { kind?: unknown }).kind;
  return typeof k === 'string' ? k : undefined;
}

/**
 * The schema of this file: the source section and each target entry validated by the adapter their `kind` names
 * (the MySQL schema when every section is MySQL's). An unknown kind is a ConfigError naming the key and the
 * known kinds.
 */
function schemaFor(raw: { source?: unknown; targets?: unknown }, file: string): z.ZodType {
  const targets = Array.isArray(raw.targets) ? (raw.targets as unknown[]) : [];
  const kinds = [kindOf(raw.source), ...targets.map(kindOf)];
  if (kinds.every((k) => k === undefined || k === 'mysql')) return configSchema;
  try {
    const source = sourceAdapterOf(kindOf(raw.source), 'source.kind').configSchema;
    const entries = targets.map((t, i) => targetAdapterOf(kindOf(t), `targets.${i}.kind`).configSchema);
    const [first, ...rest] = entries;
    return configSchema.extend({
      source,
      ...(first ? { targets: z.tuple([first, ...rest]) } : {}),
    });
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${file}: invalid config: ${err.message}`, { file });
    throw err;
  }
}

/** Zod's own wording, except a missing key reads "required" rather than "received undefined". */
const issueMessages: z.core.$ZodErrorMap = (issue) =>
  issue.code === 'invalid_type' && issue.input === undefined ? `required (expected ${issue.expected})` : undefined;

function yamlErrorMessage(err: unknown, file: string): string {
  // yaml's message is "<what> at line L, column C:\n\n<excerpt>"; keep only <what> (the excerpt may hold a secret).
  const first = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
  const what = first.replace(/ at line \d+, column \d+:?$/, '');
  const pos = err instanceof YAMLParseError ? err.linePos?.[0] : undefined;
  const where = pos ? `${file}: line ${pos.line}, column ${pos.col}` : file;
  return `${where}: not valid YAML: ${what}`;
}

function resolveSecret<T extends PasswordKeys>(e: T, key: string, baseDir: string): ResolvedEndpoint<T> {
  const { password, password_env, password_file, ...rest } = e;
  let secret: string | undefined = password;
  if (password_env !== undefined) {
    secret = process.env[password_env];
    if (secret === undefined) {
      throw new ConfigError(`${key}.password_env: environment variable ${password_env} is not set`, { key });
    }
  }
  if (password_file !== undefined) {
    const p = resolve(baseDir, password_file);
    try {
      secret = readFileSync(p, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new ConfigError(`${key}.password_file: cannot read ${p} (${(err as NodeJS.ErrnoException).code})`, {
        key,
      });
    }
  }
  const out = { ...rest } as ResolvedEndpoint<T> & { tls?: TlsConfig };
  if (out.tls) out.tls = resolveTlsPaths(out.tls, baseDir);
  return withPassword(out, secret);
}

type TlsConfig = NonNullable<SourceConfig['tls']>;

/** TLS file paths, like every other path in the file, are relative to the config file's directory. */
function resolveTlsPaths(tls: TlsConfig, baseDir: string): TlsConfig {
  const at = (p: string | undefined) => (p === undefined ? undefined : resolve(baseDir, p));
  return { ...tls, ca_file: at(tls.ca_file), cert_file: at(tls.cert_file), key_file: at(tls.key_file) };
}

/**
 * Parses and validates YAML text. `file` is used for messages and to resolve relative paths (journal.dir,
 * log.file, password_file, tls.*_file), which are taken relative to the config file's directory.
 */
export function parseConfig(text: string, file: string): Config {
  let raw: unknown;
  try {
    // logLevel 'error': warnings would go to stderr with an excerpt of the file, which may hold a password.
    raw = parseYaml(text, { logLevel: 'error' });
  } catch (err) {
    throw new ConfigError(yamlErrorMessage(err, file), { file });
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`${file}: expected a YAML mapping with keys source, journal, targets`, { file });
  }
  const res = schemaFor(raw, file).safeParse(raw, { error: issueMessages });
  if (!res.success) {
    const message = `${file}: invalid config: ${formatIssues(res.error.issues).join('; ')}`;
    throw new ConfigError(mask(message, secretsIn(raw)), { file });
  }
  // Sections of another kind have their adapter's shape (see Config).
  const c = res.data as RawConfig;
  const baseDir = dirname(resolve(file));
  const names = new Set<string>();
  for (const [i, t] of c.targets.entries()) {
    if (names.has(t.name)) throw new ConfigError(`${file}: targets.${i}.name: "${t.name}" is used twice`, { file });
    names.add(t.name);
  }
  const sites = checkSites(c, file, baseDir);
  const failover = c.failover === undefined ? undefined : resolveFailover(c.failover, c, file, baseDir);
  if (failover) {
    // Takeover promotes a standby's target: its engine must be able to (an optional adapter capability).
    for (const t of c.targets) requireCapability(t, 'takeover', `${file}: failover`);
  }
  const { admin, ...sourceKeys } = c.source;
  // Assigned, not spread: a spread would drop the non-enumerable password.
  const source: Config['source'] = resolveSecret(sourceKeys, 'source', baseDir);
  if (admin) Object.assign(source, { admin: resolveSecret(admin, 'source.admin', baseDir) });
  return {
    file,
    source,
    journal: { ...c.journal, dir: resolve(baseDir, c.journal.dir) },
    targets: c.targets.map((t, i) => resolveSecret(t, `targets.${i}`, baseDir)),
    rollback: c.rollback,
    site: c.site,
    ship: sites.ship,
    standbys: sites.standbys,
    ...(failover === undefined ? {} : { failover }),
    log: c.log.file === undefined ? c.log : { ...c.log, file: resolve(baseDir, c.log.file) },
    metrics: c.metrics,
    ...(c.backup === undefined
      ? {}
      : {
          backup: {
            ...resolveBackup(c.backup, resolve(baseDir, c.journal.dir), baseDir),
            link: { site: c.site, certs_dir: sites.ship.certs_dir, plaintext: sites.ship.plaintext },
          },
        }),
  };
}

/**
 * The account the backup stream command connects with: `backup.account` (its password from the environment
 * variable it names, read now) or else the source's, at the source's host and port.
 */
export function backupAccount(
  config: Config,
  env: NodeJS.ProcessEnv = process.env,
): { user: string; password: string | undefined; host: string; port: number } {
  const src = config.source;
  const a = config.backup?.account;
  if (a === undefined) return { user: src.user, password: src.password, host: src.host, port: src.port };
  let password: string | undefined;
  if (a.password_env !== undefined) {
    password = env[a.password_env];
    if (password === undefined || password === '') {
      throw new ConfigError(`backup.account.password_env: environment variable '${a.password_env}' is not set`, {
        key: 'backup.account.password_env',
      });
    }
  }
  return { user: a.user, password, host: src.host, port: src.port };
}

/** The backup section's paths, relative to the config file's directory like every other path. */
function resolveBackup(b: BackupConfig, journalDir: string, baseDir: string): Omit<ResolvedBackup, 'link'> {
  const enc =
    b.encryption.key_file === undefined ? b.encryption : { key_file: resolve(baseDir, b.encryption.key_file) };
  return {
    ...b,
    stores: b.stores.map((s) =>
      s.kind === 'dir'
        ? { ...s, path: resolve(baseDir, s.path) }
        : s.kind === 'site' || s.secret_access_key_file === undefined
          ? s
          : { ...s, secret_access_key_file: resolve(baseDir, s.secret_access_key_file) },
    ),
    encryption: enc,
    stream: { ...b.stream, scratch_dir: resolve(baseDir, b.stream.scratch_dir) },
    catalog_dir: resolve(baseDir, b.catalog_dir ?? resolve(journalDir, 'backup-catalog')),
  };
}

/** The failover section: priority names are standby names; the account's password resolved like any other. */
function resolveFailover(f: FailoverConfig, c: RawConfig, file: string, baseDir: string): ResolvedFailover {
  const standbys = c.standbys.map((s) => s.name);
  for (const name of Object.keys(f.election.priority)) {
    if (!standbys.includes(name)) {
      throw new ConfigError(
        `${file}: failover.election.priority.${name}: not a standby of this file (standbys: ${standbys.join(', ') || 'none'})`,
        { file },
      );
    }
  }
  const { account, ...rest } = f;
  const out = rest as ResolvedFailover;
  Object.assign(out, { account: resolveSecret(account, 'failover.account', baseDir) });
  return out;
}

export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'ENOENT' ? `: no such file (create one with: tidemark init -o ${file})` : ` (${code})`;
    throw new ConfigError(`cannot read config file ${file}${hint}`, { file });
  }
  return parseConfig(text, file);
}

/**
 * The one config file (YAML), validated at start. Every error names the key path and what was expected.
 * Passwords are kept non-enumerable on the loaded object so they never reach a log line or JSON dump.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../record/errors.ts';

const ident = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'a name of 1-64 letters, digits, "_", "." or "-"');
const port = z.number().int().min(1).max(65535);

/** A MySQL/MariaDB endpoint. Exactly one of password / password_env / password_file (or none for socket auth). */
const endpoint = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: port.default(3306),
    user: z.string().min(1),
    password: z.string().optional(),
    password_env: z.string().min(1).optional(),
    password_file: z.string().min(1).optional(),
    connect_timeout_ms: z.number().int().min(100).max(600_000).default(10_000),
    tls: z
      .object({
        ca_file: z.string().optional(),
        cert_file: z.string().optional(),
        key_file: z.string().optional(),
        reject_unauthorized: z.boolean().default(true),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((e) => [e.password, e.password_env, e.password_file].filter((x) => x !== undefined).length <= 1, {
    message: 'give at most one of password, password_env, password_file',
  });

const tableFilter = z
  .string()
  .regex(/^[^.\s]+\.[^.\s]+$/, 'a "schema.table" pattern where either part may use * and ?');

export const configSchema = z
  .object({
    source: endpoint.and(
      z.object({
        name: ident,
        kind: z.literal('mysql').default('mysql'),
        /** Replication client id; must differ from every server_id in the topology. */
        server_id: z.number().int().min(1).max(4294967295).default(4242),
        include: z.array(tableFilter).min(1),
        exclude: z.array(tableFilter).default([]),
        baseline: z
          .object({
            chunk_rows: z.number().int().min(1).max(1_000_000).default(5000),
          })
          .strict()
          .default({ chunk_rows: 5000 }),
      }),
    ),
    journal: z
      .object({
        dir: z.string().min(1),
        fsync: z.enum(['transaction', 'group']).default('group'),
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
    targets: z
      .array(
        endpoint.and(
          z.object({
            name: ident,
            kind: z.literal('mysql').default('mysql'),
            batch: z
              .object({
                max_transactions: z.number().int().min(1).max(100_000).default(500),
                max_rows: z.number().int().min(1).max(1_000_000).default(20_000),
                max_wait_ms: z.number().int().min(0).max(10_000).default(5),
              })
              .strict()
              .default({ max_transactions: 500, max_rows: 20_000, max_wait_ms: 5 }),
            /** Tables without a primary key: match the whole before image (LIMIT 1), or refuse to apply. */
            no_primary_key: z.enum(['full-row', 'refuse']).default('full-row'),
          }),
        ),
      )
      .min(1),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
        file: z.string().optional(),
      })
      .strict()
      .default({ level: 'info' }),
    metrics: z
      .object({
        port: port,
        host: z.string().default('127.0.0.1'),
      })
      .strict()
      .optional(),
  })
  .strict();

export type RawConfig = z.infer<typeof configSchema>;
export type SourceConfig = RawConfig['source'];
export type TargetConfig = RawConfig['targets'][number];
export type JournalConfig = RawConfig['journal'];

/** An endpoint after secrets are resolved. `password` is non-enumerable: JSON.stringify and pino never see it. */
export type ResolvedEndpoint<T> = Omit<T, 'password' | 'password_env' | 'password_file'> & {
  readonly password?: string;
};

export interface Config {
  readonly file: string;
  readonly source: ResolvedEndpoint<SourceConfig>;
  readonly journal: JournalConfig;
  readonly targets: readonly ResolvedEndpoint<TargetConfig>[];
  readonly log: RawConfig['log'];
  readonly metrics: RawConfig['metrics'];
}

function formatIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.length ? issue.path.map(String).join('.') : '(top level)';
  return `${path}: ${issue.message}`;
}

function resolveSecret<T extends { password?: string; password_env?: string; password_file?: string }>(
  e: T,
  key: string,
  baseDir: string,
): ResolvedEndpoint<T> {
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
  const out = { ...rest } as ResolvedEndpoint<T>;
  Object.defineProperty(out, 'password', { value: secret, enumerable: false, writable: false });
  return out;
}

/** Parses and validates YAML text. `file` is used for messages and to resolve relative paths. */
export function parseConfig(text: string, file: string): Config {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` line ${err.linePos[0].line}` : '';
    throw new ConfigError(`${file}${where}: not valid YAML: ${(err as Error).message.split('\n')[0]}`, { file });
  }
  if (raw === null || typeof raw !== 'object') {
    throw new ConfigError(`${file}: expected a YAML mapping with keys source, journal, targets`, { file });
  }
  const res = configSchema.safeParse(raw);
  if (!res.success) {
    const lines = res.error.issues.slice(0, 10).map(formatIssue);
    throw new ConfigError(`${file}: invalid config: ${lines.join('; ')}`, { file });
  }
  const c = res.data;
  const baseDir = dirname(resolve(file));
  const names = new Set<string>();
  for (const [i, t] of c.targets.entries()) {
    if (names.has(t.name)) throw new ConfigError(`${file}: targets.${i}.name: "${t.name}" is used twice`, { file });
    names.add(t.name);
  }
  return {
    file,
    source: resolveSecret(c.source, 'source', baseDir),
    journal: { ...c.journal, dir: resolve(baseDir, c.journal.dir) },
    targets: c.targets.map((t, i) => resolveSecret(t, `targets.${i}`, baseDir)),
    log: c.log,
    metrics: c.metrics,
  };
}

export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file} (${(err as NodeJS.ErrnoException).code})`, { file });
  }
  return parseConfig(text, file);
}

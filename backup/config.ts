/**
 * The `backup:` section of the config file (issue #13), owned by backup/ (config/config.ts composes it into the
 * file's schema, optional: a file without it has no backups). Stores, the master key, the pipeline's sizes, the
 * stream command (mariadb-backup, or a prefix such as `ssh db1`), the catalog cache, and the jobs: each a name,
 * a store, a type, a schedule (croner expression or one-off `at`, + time zone; run by node/backup-loop.ts) and
 * its retention; and the copies to a second store (backup/copy-config.ts). The database account is the `source:` one. Every error names its key path (zod issues go through
 * config/config.ts's formatter). Pure: no I/O.
 */
import { z } from 'zod';
import { copiesSchema } from './copy-config.ts';
import { drillsSchema } from './drill-config.ts';
import { nameSchema, retentionSchema, scheduleSchema } from './schedule-config.ts';
import { logJobSchema } from './logs-config.ts';

const SIZE_RE = /^(\d+)\s*(B|KiB|MiB|GiB)?$/;
const UNITS: Readonly<Record<string, number>> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** A byte size: a number, or "8MiB" / "1GiB" / "512KiB" (binary units only, so 1MiB is exactly 1048576). */
function sizeSchema(min: number, max: number, what: string) {
  return z
    .union([z.number().int(), z.string().regex(SIZE_RE, `a size such as 4MiB (units B, KiB, MiB, GiB)`)])
    .transform((v) => {
      if (typeof v === 'number') return v;
      const m = SIZE_RE.exec(v) as RegExpExecArray;
      return Number(m[1]) * (UNITS[m[2] ?? 'B'] ?? 1);
    })
    .refine((n) => n >= min && n <= max, `${what} must be between ${min} and ${max} bytes`);
}

const name = nameSchema;

const siteName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,62}$/, 'a site name: 1-63 letters, digits or "-"');
const hostPort = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'host:port, e.g. 10.0.0.2:7410');
/** The site whose host has a dir store (or the only site using an S3 one); absent: every site may use it. */
const storeSite = siteName.optional();

const dirStore = z.object({ name, kind: z.literal('dir'), path: z.string().min(1), site: storeSite }).strict();

const s3Store = z
  .object({
    name,
    kind: z.literal('s3'),
    site: storeSite,
    endpoint: z.url().optional(),
    region: z.string().min(1).default('us-east-1'),
    bucket: z.string().min(3),
    prefix: z
      .string()
      .regex(/^([A-Za-z0-9_.-]+\/)*$/, "a key prefix ending with '/' (or empty)")
      .default(''),
    force_path_style: z.boolean().default(false),
    access_key_id: z.string().min(1).optional(),
    access_key_id_env: z.string().min(1).optional(),
    secret_access_key: z.string().min(1).optional(),
    secret_access_key_env: z.string().min(1).optional(),
    secret_access_key_file: z.string().min(1).optional(),
    part_size: sizeSchema(5 << 20, 5 << 30, 'part_size').default(8 << 20),
    queue_size: z.number().int().min(1).max(16).default(2),
  })
  .strict()
  .refine((s) => [s.access_key_id, s.access_key_id_env].filter((v) => v !== undefined).length <= 1, {
    message: 'give at most one of access_key_id, access_key_id_env',
  })
  .refine(
    (s) =>
      [s.secret_access_key, s.secret_access_key_env, s.secret_access_key_file].filter((v) => v !== undefined).length <=
      1,
    { message: 'give at most one of secret_access_key, secret_access_key_env, secret_access_key_file' },
  );

/**
 * A store at another site: that site's `tidemark run` serves one of its own stores (`backup.serve`), reached over
 * the ship transport's mutual TLS (certificates from ship.certs_dir; the server's must name `site`).
 */
const siteStore = z.object({ name, kind: z.literal('site'), site: siteName, address: hostPort }).strict();

export const storeSchema = z.discriminatedUnion('kind', [dirStore, s3Store, siteStore]);

/** A store this site serves to the other sites (their `kind: site` stores), in `tidemark run` at `site`. */
const serveSchema = z
  .object({
    site: siteName,
    listen: hostPort,
    store: name,
    /** Sites allowed to use it; absent: any site with a certificate from our CA. */
    allow: z.array(siteName).min(1).optional(),
  })
  .strict();
export type StoreConfig = z.infer<typeof storeSchema>;

const encryptionSchema = z
  .object({ key_file: z.string().min(1).optional(), key_env: z.string().min(1).optional() })
  .strict()
  .refine((e) => (e.key_file === undefined) !== (e.key_env === undefined), {
    message: 'give exactly one of key_file, key_env (64 hex digits: openssl rand -hex 32)',
  });

const pipelineSchema = z
  .object({
    block_size: sizeSchema(1 << 20, 64 << 20, 'block_size').default(2 << 20),
    piece_size: sizeSchema(1 << 20, 5 * 1024 ** 3, 'piece_size').default(1 << 30),
    zstd_level: z.number().int().min(1).max(19).default(1),
    progress_log_seconds: z.number().min(1).max(3600).default(5),
  })
  .strict()
  .refine((p) => p.piece_size >= 2 * p.block_size, {
    message: 'piece_size must be at least twice block_size (a piece holds whole sealed blocks)',
    path: ['piece_size'],
  });

/**
 * How a physical backup is streamed. tidemark runs `command` (argv; a prefix such as [ssh, db1, mariadb-backup]
 * works) with the mariadb-backup flags appended and reads only its stdout.
 *   option_file: extra (default) — tidemark writes a mode-600 option file with the source account (user, password,
 *                host/port or socket) into the scratch directory and passes --defaults-extra-file first;
 *                only — the same with --defaults-file (no other option file is read);
 *                none — the command finds its own credentials (e.g. ~/.my.cnf on the remote host of an ssh).
 *   The password is never on a command line.
 */
const streamSchema = z
  .object({
    command: z.array(z.string().min(1)).min(1).default(['mariadb-backup']),
    option_file: z.enum(['extra', 'only', 'none']).default('extra'),
    /** mariadb-backup's --target-dir parent (its own small scratch files; tidemark adds one directory per run). */
    scratch_dir: z.string().min(1).default('/var/tmp/tidemark-backup'),
    /** The server's datadir, as mariadb-backup on the database host sees it. */
    datadir: z.string().min(1).optional(),
    /** The server's socket (else host/port of `source:`). */
    socket: z.string().min(1).optional(),
    extra_args: z.array(z.string()).default([]),
  })
  .strict();

const jobSchema = z
  .object({
    name,
    store: name,
    type: z.enum(['full', 'incremental', 'differential']),
    schedule: scheduleSchema.optional(),
    retention: retentionSchema,
    logs: name.optional(),
  })
  .strict();

export const backupSchema = z
  .object({
    stores: z.array(storeSchema).min(1),
    encryption: encryptionSchema,
    pipeline: pipelineSchema.default(pipelineSchema.parse({})),
    stream: streamSchema.default(streamSchema.parse({})),
    /** Directory of the catalog caches (one node:sqlite file per store); default `<journal.dir>/backup-catalog`. */
    catalog_dir: z.string().min(1).optional(),
    /** An unsealed backup younger than this may still be running: expire leaves its objects alone. */
    orphan_grace_minutes: z
      .number()
      .min(0)
      .default(24 * 60),
    /**
     * The account the stream command (mariadb-backup) connects with, when not the `source:` one: a backup needs
     * RELOAD, PROCESS, LOCK TABLES and BINLOG MONITOR, which capture's least-privilege account does not have.
     */
    account: z
      .object({ user: z.string().min(1), password_env: z.string().min(1).optional() })
      .strict()
      .optional(),
    jobs: z.array(jobSchema).default([]),
    serve: z.array(serveSchema).default([]),
    copies: copiesSchema,
    logs: z.array(logJobSchema).default([]),
    drills: drillsSchema,
  })
  .strict()
  .superRefine((b, ctx) => {
    const stores = new Set<string>();
    for (const [i, s] of b.stores.entries()) {
      if (stores.has(s.name))
        ctx.addIssue({ code: 'custom', path: ['stores', i, 'name'], message: `"${s.name}" is used twice` });
      stores.add(s.name);
    }
    for (const [i, v] of b.serve.entries()) {
      const s = b.stores.find((x) => x.name === v.store);
      if (s === undefined || s.kind === 'site') {
        ctx.addIssue({
          code: 'custom',
          path: ['serve', i, 'store'],
          message: `"${v.store}" must be a dir or s3 store of backup.stores (a site serves its own stores)`,
        });
      } else if (s.site !== undefined && s.site !== v.site) {
        ctx.addIssue({
          code: 'custom',
          path: ['serve', i, 'store'],
          message: `store "${v.store}" belongs to site ${s.site}; site ${v.site} cannot serve it`,
        });
      }
    }
    const jobs = new Set<string>();
    for (const [i, j] of b.jobs.entries()) {
      if (jobs.has(j.name))
        ctx.addIssue({ code: 'custom', path: ['jobs', i, 'name'], message: `"${j.name}" is used twice` });
      jobs.add(j.name);
      if (!stores.has(j.store)) {
        ctx.addIssue({
          code: 'custom',
          path: ['jobs', i, 'store'],
          message: `no store "${j.store}" in backup.stores (it has: ${[...stores].join(', ')})`,
        });
      }
    }
  });

export type BackupConfig = z.infer<typeof backupSchema>;
export type BackupJobConfig = BackupConfig['jobs'][number];
export type StreamConfig = BackupConfig['stream'];

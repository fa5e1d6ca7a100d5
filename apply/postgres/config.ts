/**
 * The `targets:` entry of a PostgreSQL target (`kind: postgres`), owned by apply/postgres (the config loader
 * validates the entry with this schema and resolves password / password_env / password_file). Strict: an unknown
 * key (a typo) is an error. Documented in apply/postgres/README.md.
 */
import { z } from 'zod';
import { batchSchema } from '../../engine/batch-config.ts';
import type { ResolvedEndpoint } from '../../core/secret.ts';
// The engine-neutral endpoint keys (name, port, password keys, tls) are those of every endpoint in the file.
import {
  atMostOnePassword,
  atMostOnePasswordMessage,
  endpointShape,
  nameSchema,
  portSchema,
} from '../../mysql/endpoint.ts';

export const pgTargetSchema = z
  .object({
    kind: z.literal('postgres'),
    ...endpointShape,
    name: nameSchema,
    port: portSchema.default(5432),
    /** The database the source's tables are applied into (same schema and table names as the source). */
    database: z.string().min(1),
    /** verify: rows per chunk compared by count and md5 before a chunk is compared key by key. */
    verify: z
      .object({ chunk_rows: z.number().int().min(1).max(1_000_000).default(10_000) })
      .strict()
      .default({ chunk_rows: 10_000 }),
    /**
     * Grouping (README "Grouping and pipelining"): several source transactions per target transaction while more
     * are immediately available; the same keys, defaults and meaning as a MySQL target's `batch`.
     */
    batch: batchSchema,
    /**
     * Mark every applied transaction with the replication origin `tidemark_<source name>/<database>` (README
     * "Replication origin"), so a capture of this database skips them. false: no origin (a target never captured).
     */
    replication_origin: z.boolean().default(true),
    /** The site this target is applied at: the primary's (default) or a standby's, from its mirror journal. */
    site: z.string().min(1).optional(),
  })
  .strict()
  .refine(atMostOnePassword, atMostOnePasswordMessage);

export type PgTargetConfig = z.infer<typeof pgTargetSchema>;

/** A loaded `targets:` entry of kind postgres (password resolved, non-enumerable). */
export type PgTargetSection = ResolvedEndpoint<PgTargetConfig>;

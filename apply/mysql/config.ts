/**
 * The `targets:` entries of the config file, owned by apply (the config loader composes them into the file's schema,
 * resolves their secrets and cross-checks their `site` with the standbys).
 */
import { z } from 'zod';
import { batchSchema } from '../../engine/batch-config.ts';
import { atMostOnePassword, atMostOnePasswordMessage, endpointShape, nameSchema } from '../../mysql/endpoint.ts';

export const targetSchema = z
  .object({
    ...endpointShape,
    name: nameSchema,
    kind: z.literal('mysql').default('mysql'),
    batch: batchSchema,
    /**
     * Parallel apply with ordered commit (PARALLEL.md): `workers` sessions execute independent source transactions
     * at once, commits stay in source order. 1 (default): one session, as before.
     */
    parallel: z
      .object({
        workers: z.number().int().min(1).max(64).default(1),
        /** Row keys remembered for dependency tracking (older ones make later transactions wait, never conflict). */
        max_row_keys: z.number().int().min(1000).max(100_000_000).default(1_000_000),
      })
      .strict()
      .default({ workers: 1, max_row_keys: 1_000_000 }),
    /** Tables without a primary key: match the whole before image (LIMIT 1), or refuse to apply. */
    no_primary_key: z.enum(['full-row', 'refuse']).default('full-row'),
    /** The site this target is applied at: the primary's (default) or a standby's, from its mirror journal. */
    site: z.string().min(1).optional(),
  })
  .strict()
  .refine(atMostOnePassword, atMostOnePasswordMessage);

export type TargetConfig = z.infer<typeof targetSchema>;

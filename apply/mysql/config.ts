/**
 * The `targets:` entries of the config file, owned by apply (the config loader composes them into the file's schema,
 * resolves their secrets and cross-checks their `site` with the standbys).
 */
import { z } from 'zod';
import { atMostOnePassword, atMostOnePasswordMessage, endpointShape, nameSchema } from '../../mysql/endpoint.ts';

export const targetSchema = z
  .object({
    ...endpointShape,
    name: nameSchema,
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
    /** The site this target is applied at: the primary's (default) or a standby's, from its mirror journal. */
    site: z.string().min(1).optional(),
  })
  .strict()
  .refine(atMostOnePassword, atMostOnePasswordMessage);

export type TargetConfig = z.infer<typeof targetSchema>;

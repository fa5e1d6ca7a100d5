/**
 * The `batch` key of a target (`targets[].batch`) for appliers that group several source transactions into one
 * target transaction (apply/mysql, apply/postgres): the same keys, defaults and meaning for every engine.
 */
import { z } from 'zod';

export const BATCH_DEFAULTS = { max_transactions: 500, max_rows: 20_000, max_wait_ms: 5 } as const;

export const batchSchema = z
  .object({
    /** A group commits when it holds this many source transactions… */
    max_transactions: z.number().int().min(1).max(100_000).default(BATCH_DEFAULTS.max_transactions),
    /** …or this many rows… */
    max_rows: z.number().int().min(1).max(1_000_000).default(BATCH_DEFAULTS.max_rows),
    /**
     * …or once it has waited this long in all for more journal entries (0: only what is already read); time spent
     * running its statements does not count, so a backlog fills groups up to the limits above. A group ends only at
     * a source commit.
     */
    max_wait_ms: z.number().int().min(0).max(10_000).default(BATCH_DEFAULTS.max_wait_ms),
  })
  .strict()
  .default(BATCH_DEFAULTS);

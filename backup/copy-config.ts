/**
 * `backup.copies`: copies of the sealed backups of one store into a second store (issue #13, scope 7), composed
 * into backup/config.ts. Each copy has a name, a source store `from`, a destination store `to`, optionally the
 * jobs it copies (default: every job), a schedule (run by `tidemark run`; without one only `tidemark backup copy
 * NAME` runs it) and a retention applied to the destination after each copy, per job. Pure: no I/O.
 *
 * The store names are checked against `backup.stores` by checkCopies (called where the section is used: the
 * command and the scheduler), so that composing this schema takes one line of backup/config.ts.
 */
import { z } from 'zod';
import { ConfigError } from '../core/errors.ts';
import { nameSchema, retentionSchema, scheduleSchema } from './schedule-config.ts';

export const copySchema = z
  .object({
    name: nameSchema,
    from: nameSchema,
    to: nameSchema,
    /** Only these jobs' backups (default: every backup in `from`). */
    jobs: z.array(nameSchema).min(1).optional(),
    schedule: scheduleSchema.optional(),
    /** Applied to `to` after each copy, per copied job (stars and parents kept, as for a job). Absent: keep all. */
    retention: retentionSchema,
  })
  .strict()
  .refine((c) => c.from !== c.to, { message: 'from and to must be two different stores', path: ['to'] });

export const copiesSchema = z.array(copySchema).default([]);

export type CopyConfig = z.infer<typeof copySchema>;

/** Store and name checks against the rest of the section: a ConfigError naming the key path, or nothing. */
export function checkCopies(b: {
  readonly stores: readonly { readonly name: string }[];
  readonly jobs: readonly { readonly name: string }[];
  readonly copies: readonly CopyConfig[];
}): void {
  const stores = new Set(b.stores.map((s) => s.name));
  const seen = new Set<string>();
  for (const [i, c] of b.copies.entries()) {
    if (seen.has(c.name)) throw new ConfigError(`backup.copies.${i}.name: "${c.name}" is used twice`, { copy: c.name });
    seen.add(c.name);
    for (const k of ['from', 'to'] as const) {
      if (!stores.has(c[k])) {
        throw new ConfigError(
          `backup.copies.${i}.${k}: no store "${c[k]}" in backup.stores (it has: ${[...stores].join(', ')})`,
          { copy: c.name },
        );
      }
    }
  }
}

/** The copy named `name`, or a ConfigError listing the copies there are. */
export function copyOf(copies: readonly CopyConfig[], name: string): CopyConfig {
  const c = copies.find((x) => x.name === name);
  if (c === undefined) {
    const known = copies.map((x) => x.name).join(', ') || 'none';
    throw new ConfigError(`backup copy '${name}': no such copy (backup.copies has: ${known})`, { copy: name });
  }
  return c;
}

/**
 * The `source:` section of the config file, owned by capture (the config loader composes it into the file's schema,
 * resolves its secrets and cross-checks it with the other sections).
 */
import { z } from 'zod';
import {
  accountSchema,
  atMostOnePassword,
  atMostOnePasswordMessage,
  endpointShape,
  nameSchema,
} from '../../mysql/endpoint.ts';

const tableFilter = z
  .string()
  .regex(/^[^.\s]+\.[^.\s]+$/, 'a "schema.table" pattern where either part may use * and ?');

/**
 * source.accounts: the users ("user@host", the last @ splits) and roles (a bare name) whose definition and grants
 * tidemark replicates (mysql/accounts.ts); empty: no account is touched on a replica.
 */
const accountEntry = z
  .string()
  .min(1)
  .refine((e) => !e.includes('@') || e.lastIndexOf('@') > 0, {
    message: 'an account is "user@host" (e.g. app@% or report@10.0.0.%) and a role its bare name; the user is missing',
  });

/** An account on the source used only by rewind/undo aimed at the source itself (needs DML on the tables). */
const adminSchema = accountSchema;

export const sourceSchema = z
  .object({
    ...endpointShape,
    name: nameSchema,
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
    admin: adminSchema.optional(),
    accounts: z.array(accountEntry).default([]),
  })
  .strict()
  .refine(atMostOnePassword, atMostOnePasswordMessage);

export type SourceConfig = z.infer<typeof sourceSchema>;
export type AdminConfig = NonNullable<SourceConfig['admin']>;

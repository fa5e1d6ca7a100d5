/**
 * The `source:` section of a PostgreSQL source (`kind: postgres`), owned by capture (engine/README.md: the config
 * loader validates the section with this schema and resolves password / password_env / password_file). Strict:
 * an unknown key (a typo) is an error. Documented in capture/postgres/README.md.
 */
import { z } from 'zod';
import type { ResolvedEndpoint } from '../../core/secret.ts';
// The engine-neutral endpoint keys (name, port, password keys, tls) are those of every endpoint in the file.
import {
  accountSchema,
  atMostOnePassword,
  atMostOnePasswordMessage,
  endpointShape,
  nameSchema,
  portSchema,
} from '../../mysql/endpoint.ts';

const tableFilter = z
  .string()
  .regex(/^[^.\s]+\.[^.\s]+$/, 'a "schema.table" pattern where either part may use * and ?');

/** Slot and publication names as tidemark creates them: unquoted-safe lower-case identifiers. */
const pgName = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a name of 1-63 of a-z, 0-9 and _ (not starting with a digit)');

/** The engine tag of this source's positions (record/position.ts sequencePosition): commit end LSNs. */
export const POSITION_ENGINE = 'postgres';

export const pgSourceSchema = z
  .object({
    kind: z.literal('postgres'),
    ...endpointShape,
    name: nameSchema,
    port: portSchema.default(5432),
    /** The captured database (a logical slot belongs to one database). */
    database: z.string().min(1),
    /** The publication (created by the tables' owner) whose tables are streamed. */
    publication: pgName.default('tidemark'),
    /** The logical replication slot (pgoutput) capture creates at the baseline and streams from. */
    slot: pgName.default('tidemark'),
    /** Which of the publication's tables are captured ("schema.table" globs); default all of them. */
    include: z.array(tableFilter).min(1).default(['*.*']),
    exclude: z.array(tableFilter).default([]),
    /** Tables captured without REPLICA IDENTITY FULL (no before images; rewind disabled for them). */
    identity_full_opt_out: z.array(z.string().regex(/^[^.\s]+\.[^.\s]+$/, 'a "schema.table" name')).default([]),
    /**
     * How DDL is captured (README "DDL"): event-triggers requires ddl-triggers.sql installed; relations uses only
     * the Relation-message fallback; auto uses the triggers when installed, else the fallback.
     */
    ddl: z.enum(['auto', 'event-triggers', 'relations']).default('auto'),
    /**
     * Transactions whose replication origin matches one of these globs (`*`, `?`) are not captured (README
     * "Replication origin"): by default those a tidemark applier wrote into this database (origins `tidemark_…`),
     * so a failback or two-way topology never loops. [] captures every transaction.
     */
    skip_origins: z.array(z.string().min(1)).default(['tidemark_*']),
    baseline: z
      .object({ chunk_rows: z.number().int().min(1).max(1_000_000).default(5000) })
      .strict()
      .default({ chunk_rows: 5000 }),
    /**
     * The account `tidemark failback` rewinds this server with once it is an old primary (DML on the captured
     * tables, SET on session_replication_role) and writes its tidemark.applied row with (failover/README.md).
     */
    admin: accountSchema.optional(),
  })
  .strict()
  .refine(atMostOnePassword, atMostOnePasswordMessage);

export type PgSourceConfig = z.infer<typeof pgSourceSchema>;

/** A loaded `source:` section of kind postgres (password resolved, non-enumerable). */
export type PgSourceSection = ResolvedEndpoint<PgSourceConfig>;

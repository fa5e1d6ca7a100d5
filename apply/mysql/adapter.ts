/**
 * MySQL/MariaDB as a target engine (engine/target.ts): a thin wrapper over MysqlApplier, readTarget, verifyTables
 * and the `targets:` entry schema. Verify compares with a MySQL source only (it reads both with the same checksums).
 *
 * Loaded with this module: the schema and the position statements (rewind, takeover). The appliers, verify and
 * the client sessions are imported when first used, so a command that applies nothing does not load them
 * (capture/mysql/adapter.ts, the same for the source).
 */
import type mysql from 'mysql2/promise';
import { ConfigError } from '../../core/errors.ts';
import type { ResolvedEndpoint } from '../../core/secret.ts';
import type { TableRef } from '../../engine/source.ts';
import type { Applier, ApplierOptions, TargetAdapter, VerifyOptions, VerifyResult } from '../../engine/target.ts';
import { createTableFilter } from '../../mysql/table-filter.ts';
import type { PgVerifySource } from './cross-verify.ts';
import { type TargetConfig, targetSchema } from './config.ts';
import { lockForRewindSql, PROMOTED_HOLD, setPointSql } from './position-table.ts';
import type { MysqlEndpoint } from '../../mysql/session.ts';

/** A loaded `targets:` entry of kind mysql (password resolved, non-enumerable). */
export type MysqlTargetSection = ResolvedEndpoint<TargetConfig>;

/** The source as MySQL verify reads it: a MySQL endpoint with its include/exclude patterns and listed accounts. */
type MysqlVerifySource = MysqlEndpoint & {
  readonly include: readonly string[];
  readonly exclude: readonly string[];
  /** source.accounts (absent in older configs). */
  readonly accounts?: readonly string[];
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function mysqlSourceOf(o: VerifyOptions<MysqlTargetSection>): MysqlVerifySource {
  if (o.source.kind !== 'mysql') {
    throw new ConfigError(
      `target ${o.target.name}: a mysql target verifies against a mysql or postgres source only ` +
        `(source.kind is "${o.source.kind}")`,
      { target: o.target.name },
    );
  }
  return o.source as unknown as MysqlVerifySource;
}

/** Every base table or sequence on the source that the include/exclude patterns take in. */
async function capturedTables(source: MysqlVerifySource): Promise<TableRef[]> {
  const filter = createTableFilter(source.include, source.exclude);
  const { openSession } = await import('../../mysql/session.ts');
  const conn = await openSession(source, { apply: false });
  try {
    const [rows] = await conn.query<mysql.RowDataPacket[]>(
      "SELECT table_schema AS s, table_name AS t FROM information_schema.tables WHERE table_type IN ('BASE TABLE', 'SEQUENCE') ORDER BY 1, 2",
    );
    return rows
      .map((r) => ({ schema: String(r['s']), table: String(r['t']) }))
      .filter((t) => filter.includesTable(t.schema, t.table));
  } finally {
    await conn.end().catch(() => {});
  }
}

async function verify(o: VerifyOptions<MysqlTargetSection>): Promise<VerifyResult> {
  if (o.source.kind === 'postgres') {
    // Cross-engine: a type-aware comparison through the PostgreSQL → MariaDB mapping (cross-verify.ts).
    const src = o.source as unknown as PgVerifySource;
    const { verifyFromPostgres } = await import('./cross-verify.ts'); // loads pg only for a postgres source
    const tables = await verifyFromPostgres(src, o.target, o.tables);
    return { tables, equal: tables.every((t) => t.equal) };
  }
  const source = mysqlSourceOf(o);
  const filter = createTableFilter(source.include, source.exclude);
  const { verifyTables } = await import('./verify.ts');
  return verifyTables({
    source,
    replica: o.target,
    tables: o.tables ?? (await capturedTables(source)),
    // Without a table list: every included table of either side, so one missing on a side is listed, never skipped.
    ...(o.tables
      ? {}
      : {
          includes: (schema: string, table: string) => filter.includesTable(schema, table),
          // A whole verify compares the views, routines, triggers and events too (verify-objects.ts).
          objects: filter,
          // …and the accounts source.accounts lists (verify-accounts.ts).
          accounts: source.accounts ?? [],
        }),
    log: o.log,
    ...(o.signal ? { signal: o.signal } : {}),
    // A difference that disappears on a re-check was replication lag; one that stays is real.
    recheck: { attempts: 5, delay: (n) => sleep(500 * n) },
  });
}

async function applier(o: ApplierOptions<MysqlTargetSection>): Promise<Applier> {
  const fromMysql = o.sourceKind === undefined || o.sourceKind === 'mysql';
  if (!fromMysql && o.sourceKind !== 'postgres') {
    throw new ConfigError(
      `target ${o.target.name}: a mysql target applies mysql and postgres sources (source.kind is "${o.sourceKind}")`,
      { target: o.target.name },
    );
  }
  const opts = { target: o.target, source: o.source, log: o.log, ...(o.metrics ? { metrics: o.metrics } : {}) };
  if (o.target.parallel.workers > 1 && fromMysql) {
    return new (await import('./parallel-applier.ts')).ParallelApplier(opts);
  }
  const inner = new (await import('./applier.ts')).MysqlApplier(opts);
  if (fromMysql) return inner;
  return new (await import('./cross-applier.ts')).FromPostgresApplier(inner, o.target, o.target.name);
}

export const mysqlTarget: TargetAdapter<MysqlTargetSection> = {
  kind: 'mysql',
  configSchema: targetSchema,
  preflight: async (t) => (await import('../../mysql/preflight.ts')).preflightMysql(`target ${t.name}`, t),
  applier,
  readStored: async (t, source) => (await import('./read-target.ts')).readTarget(t, source),
  verify,
  rewind: { lockForRewindSql, setPointSql },
  takeover: { promotedHold: PROMOTED_HOLD },
};

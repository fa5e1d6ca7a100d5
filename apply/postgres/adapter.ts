/**
 * PostgreSQL as a target engine (engine/target.ts): kind 'postgres'. A thin wrapper over PgApplier (applier.ts),
 * the stored position in tidemark.applied (position.ts), verifyPg (verify.ts) and the `targets:` entry schema.
 * Registered in config/engines.ts. Rewind: the position statements here, the rest in rollback/pg-*.ts. Takeover:
 * failover/pg-*.ts. Only the schema and the position statements are loaded with this module; the applier, verify
 * and `pg` are imported when first used (capture/mysql/adapter.ts says why).
 */
import { ConfigError } from '../../core/errors.ts';
import type { TargetAdapter, VerifyResult } from '../../engine/target.ts';
import { type PgTargetSection, pgTargetSchema } from './config.ts';
import type { MysqlVerifySource } from './cross-verify.ts';
import { lockForRewindSql, PROMOTED_HOLD, parseStored, selectSql, setPointSql } from './position.ts';
import type { PgVerifySource } from './verify.ts';

export type { PgTargetSection } from './config.ts';

export const postgresTarget: TargetAdapter<PgTargetSection> = {
  kind: 'postgres',
  configSchema: pgTargetSchema,
  async preflight(t) {
    const { openApplySession } = await import('./applier.ts');
    const client = await openApplySession(t, 'tidemark-preflight');
    await client.end().catch(() => {});
  },
  applier: async (o) => {
    if (o.sourceKind !== undefined && o.sourceKind !== 'postgres' && o.sourceKind !== 'mysql') {
      throw new ConfigError(
        `target ${o.target.name}: a postgres target applies postgres and mysql sources (source.kind is "${o.sourceKind}")`,
        { target: o.target.name },
      );
    }
    return new (await import('./applier.ts')).PgApplier({
      target: o.target,
      source: o.source,
      sourceKind: o.sourceKind,
      log: o.log,
      metrics: o.metrics,
    });
  },
  async readStored(t, source) {
    try {
      const { openApplySession, preparePositionTable } = await import('./applier.ts');
      const client = await openApplySession(t, 'tidemark-status');
      try {
        await preparePositionTable(client, source);
        return { name: t.name, stored: parseStored((await client.query(selectSql, [source])).rows[0]) };
      } finally {
        await client.end().catch(() => {});
      }
    } catch (err) {
      return { name: t.name, stored: null, error: (err as Error).message };
    }
  },
  async verify(o): Promise<VerifyResult> {
    if (o.source.kind === 'mysql') {
      const src = o.source as unknown as MysqlVerifySource;
      const { verifyFromMysql } = await import('./cross-verify.ts');
      const tables = await verifyFromMysql(src, o.target, o.tables, o.target.verify?.chunk_rows);
      return { tables, equal: tables.every((t) => t.equal) };
    }
    const src = o.source as unknown as PgVerifySource;
    const { verifyPg } = await import('./verify.ts');
    const tables = await verifyPg(src, o.target, o.tables, o.target.verify?.chunk_rows);
    return { tables, equal: tables.every((t) => t.equal) };
  },
  rewind: { lockForRewindSql, setPointSql },
  // failover/pg-hold.ts sets this hold prefix (the same text as MySQL's: status and failback read it).
  takeover: { promotedHold: PROMOTED_HOLD },
};

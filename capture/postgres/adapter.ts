/**
 * PostgreSQL as a source engine (engine/source.ts): kind 'postgres', positions sequencePosition('postgres', commit
 * end LSN). A thin wrapper over PgCapture (capture.ts), the start-up check (connect, publication, prerequisites)
 * and pg_current_wal_lsn() for status and verify. Registered in config/engines.ts. Only the schema is loaded with
 * this module; the capture and `pg` are imported when first used (capture/mysql/adapter.ts says why).
 */
import type { SourceAdapter } from '../../engine/source.ts';
import { parseLsn } from '../../postgres/lsn.ts';
import { sequencePosition } from '../../record/position.ts';
import { POSITION_ENGINE, type PgSourceSection, pgSourceSchema } from './config.ts';

export type { PgSourceSection } from './config.ts';

export const postgresSource: SourceAdapter<PgSourceSection> = {
  kind: 'postgres',
  positionEngine: POSITION_ENGINE,
  configSchema: pgSourceSchema,
  async preflight(s) {
    const { openChecked } = await import('./capture.ts');
    const { client } = await openChecked(s);
    await client.end().catch(() => {});
  },
  capture: async (o) => new (await import('./capture.ts')).PgCapture(o),
  async readPosition(s) {
    try {
      const [{ endpointOf }, { openPgClient }] = await Promise.all([
        import('./capture.ts'),
        import('../../postgres/session.ts'),
      ]);
      const client = await openPgClient(endpointOf(s), { applicationName: 'tidemark-status', tlsKey: 'source.tls' });
      try {
        const r = await client.query('SELECT pg_current_wal_lsn()::text AS lsn');
        return { position: sequencePosition(POSITION_ENGINE, parseLsn((r.rows[0] as { lsn: string }).lsn)) };
      } finally {
        await client.end().catch(() => {});
      }
    } catch (err) {
      return { position: null, error: (err as Error).message };
    }
  },
};

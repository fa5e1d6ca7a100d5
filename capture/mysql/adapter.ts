/**
 * MySQL/MariaDB as a source engine (engine/source.ts): a thin wrapper over MysqlCapture, readSource, the start-up
 * connection check of the one MySQL layer (mysql/preflight.ts) and the `source:` section schema.
 *
 * Only the schema is loaded with this module: the config loader (every CLI command) needs it, while the capture
 * (zongji, the row decoders) and the client sessions are imported when first used — a command that never
 * captures does not pay for loading them.
 */
import type { SourceAdapter } from '../../engine/source.ts';
import type { ResolvedEndpoint } from '../../core/secret.ts';
import { type AdminConfig, type SourceConfig, sourceSchema } from './config.ts';

/** A loaded `source:` section of kind mysql (passwords resolved, non-enumerable). */
export type MysqlSourceSection = Omit<ResolvedEndpoint<SourceConfig>, 'admin'> & {
  readonly admin?: ResolvedEndpoint<AdminConfig>;
};

export const mysqlSource: SourceAdapter<MysqlSourceSection> = {
  kind: 'mysql',
  positionEngine: 'mysql',
  configSchema: sourceSchema,
  preflight: async (s) => (await import('../../mysql/preflight.ts')).preflightMysql('source', s),
  capture: async (o) => {
    const { MysqlCapture } = await import('./capture.ts');
    return new MysqlCapture({
      source: o.source,
      sink: o.sink,
      resume: o.resume,
      log: o.log,
      forceBaseline: o.forceBaseline,
      ...(o.baselineLedger ? { baselineLedger: o.baselineLedger } : {}),
      ...(o.retry ? { retry: o.retry } : {}),
    });
  },
  readPosition: async (s) => (await import('./read-source.ts')).readSource(s),
};

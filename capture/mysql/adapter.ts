/**
 * MySQL/MariaDB as a source engine (engine/source.ts): a thin wrapper over MysqlCapture, readSource, the start-up
 * connection check of the one MySQL layer (mysql/preflight.ts) and the `source:` section schema.
 */
import type { SourceAdapter } from '../../engine/source.ts';
import type { ResolvedEndpoint } from '../../core/secret.ts';
import { preflightMysql } from '../../mysql/preflight.ts';
import { MysqlCapture } from './capture.ts';
import { type AdminConfig, type SourceConfig, sourceSchema } from './config.ts';
import { readSource } from './read-source.ts';

/** A loaded `source:` section of kind mysql (passwords resolved, non-enumerable). */
export type MysqlSourceSection = Omit<ResolvedEndpoint<SourceConfig>, 'admin'> & {
  readonly admin?: ResolvedEndpoint<AdminConfig>;
};

export const mysqlSource: SourceAdapter<MysqlSourceSection> = {
  kind: 'mysql',
  positionEngine: 'mysql',
  configSchema: sourceSchema,
  preflight: (s) => preflightMysql('source', s),
  capture: (o) =>
    new MysqlCapture({
      source: o.source,
      sink: o.sink,
      resume: o.resume,
      log: o.log,
      forceBaseline: o.forceBaseline,
      ...(o.baselineLedger ? { baselineLedger: o.baselineLedger } : {}),
      ...(o.retry ? { retry: o.retry } : {}),
    }),
  readPosition: (s) => readSource(s),
};

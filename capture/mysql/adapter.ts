/**
 * MySQL/MariaDB as a source engine (engine/source.ts): a thin wrapper over MysqlCapture, readSource and the
 * `source:` section schema. The preflight is supplied where the MySQL engine is registered (config/engines.ts):
 * it opens the same session as the applier does, which lives beside apply until the one MySQL layer (mysql/)
 * holds it.
 */
import type { SourceAdapter } from '../../engine/source.ts';
import type { ResolvedEndpoint } from '../../core/secret.ts';
import { MysqlCapture } from './capture.ts';
import { type AdminConfig, type SourceConfig, sourceSchema } from './config.ts';
import { readSource } from './read-source.ts';

/** A loaded `source:` section of kind mysql (passwords resolved, non-enumerable). */
export type MysqlSourceSection = Omit<ResolvedEndpoint<SourceConfig>, 'admin'> & {
  readonly admin?: ResolvedEndpoint<AdminConfig>;
};

export const mysqlSource: Omit<SourceAdapter<MysqlSourceSection>, 'preflight'> = {
  kind: 'mysql',
  positionEngine: 'mysql',
  configSchema: sourceSchema,
  capture: (o) =>
    new MysqlCapture({
      source: o.source,
      sink: o.sink,
      resume: o.resume,
      log: o.log,
      forceBaseline: o.forceBaseline,
      ...(o.retry ? { retry: o.retry } : {}),
    }),
  readPosition: (s) => readSource(s),
};

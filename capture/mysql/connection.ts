/**
 * Connections to the source. Every tidemark connection uses the same value options, so that mysql2 query
 * results and zongji binlog rows come out in the forms values.ts expects:
 *   supportBigNumbers + bigNumberStrings  64-bit integers exact (number when safe, else string)
 *   decimalNumbers: false                 DECIMAL as exact strings
 *   dateStrings: true, timezone 'Z'       DATE/DATETIME/TIMESTAMP as text with all fractional digits, no Date
 *   jsonStrings: true                     JSON as text
 * and every query session runs with time_zone '+00:00' so TIMESTAMP text is UTC.
 */
import { readFileSync } from 'node:fs';
import mysql from 'mysql2';
import type { Connection as PromiseConnection } from 'mysql2/promise';
import type { SourceConfig } from './config.ts';
import { ConfigError } from '../../core/errors.ts';
import { type Endpoint, sourceError } from './errors.ts';

/** The connection-relevant part of the source config (password resolved, non-enumerable). */
export type SourceEndpoint = Pick<SourceConfig, 'host' | 'port' | 'user' | 'connect_timeout_ms' | 'tls'> & {
  readonly password?: string;
};

function readTlsFile(path: string | undefined, key: string): string | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`source.tls.${key}: cannot read ${path} (${(err as NodeJS.ErrnoException).code})`, { key });
  }
}

/** mysql2 connection options for the source. The result holds the password: never log it. */
export function connectionOptions(src: SourceEndpoint): mysql.ConnectionOptions {
  const opts: mysql.ConnectionOptions = {
    host: src.host,
    port: src.port,
    user: src.user,
    password: src.password,
    connectTimeout: src.connect_timeout_ms,
    charset: 'utf8mb4_general_ci',
    supportBigNumbers: true,
    bigNumberStrings: true,
    decimalNumbers: false,
    dateStrings: true,
    timezone: 'Z',
    jsonStrings: true,
    enableKeepAlive: true,
    keepAliveInitialDelay: 10_000,
  };
  if (src.tls) {
    opts.ssl = {
      ca: readTlsFile(src.tls.ca_file, 'ca_file'),
      cert: readTlsFile(src.tls.cert_file, 'cert_file'),
      key: readTlsFile(src.tls.key_file, 'key_file'),
      rejectUnauthorized: src.tls.reject_unauthorized,
    };
  }
  return opts;
}

export function endpointOf(src: SourceEndpoint): Endpoint {
  return { host: src.host, port: src.port, user: src.user };
}

/** A connection as both APIs: `promise` for queries, `raw` for streaming result sets. */
export interface SourceConnection {
  readonly raw: mysql.Connection;
  readonly promise: PromiseConnection;
  close(): Promise<void>;
}

/** Opens a session with time_zone '+00:00'. Errors come back classified (CONNECT / AUTH / …). */
export async function openSourceConnection(src: SourceEndpoint, what: string): Promise<SourceConnection> {
  const raw = mysql.createConnection(connectionOptions(src));
  const promise = raw.promise();
  // Errors on an idle connection surface on its next query; do not let them crash the process meanwhile.
  raw.on('error', () => {});
  try {
    await promise.connect();
    await promise.query("SET time_zone = '+00:00'");
  } catch (err) {
    raw.destroy();
    throw sourceError(err, endpointOf(src), what);
  }
  return {
    raw,
    promise,
    async close() {
      try {
        await promise.end();
      } catch {
        raw.destroy();
      }
    },
  };
}

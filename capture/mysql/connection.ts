/**
 * Connections to the source, through the one MySQL layer (mysql/session.ts: value options, TLS, time_zone
 * '+00:00'); errors come back as capture's (errors.ts: CONNECT / AUTH / PRIVILEGE / SOURCE).
 */
import type mysql from 'mysql2';
import {
  connectionOptions as mysqlConnectionOptions,
  openStreamingSession,
  type StreamingSession,
} from '../../mysql/session.ts';
import type { SourceConfig } from './config.ts';
import { type Endpoint, sourceError } from './errors.ts';

/** The connection-relevant part of the source config (password resolved, non-enumerable). */
export type SourceEndpoint = Pick<SourceConfig, 'host' | 'port' | 'user' | 'connect_timeout_ms' | 'tls'> & {
  readonly password?: string;
};

/** A connection as both APIs: `promise` for queries, `raw` for streaming result sets. */
export type SourceConnection = StreamingSession;

/** mysql2 connection options for the source (zongji's replication connection). Holds the password: never log it. */
export function connectionOptions(src: SourceEndpoint): mysql.ConnectionOptions {
  return mysqlConnectionOptions(src, { keepAlive: true, tlsKey: 'source.tls' });
}

export function endpointOf(src: SourceEndpoint): Endpoint {
  return { host: src.host, port: src.port, user: src.user };
}

/** Opens a session with time_zone '+00:00'. Errors come back classified (CONNECT / AUTH / …). */
export function openSourceConnection(src: SourceEndpoint, what: string): Promise<SourceConnection> {
  return openStreamingSession(src, { tlsKey: 'source.tls', wrap: (err) => sourceError(err, endpointOf(src), what) });
}

/**
 * The one way tidemark opens a PostgreSQL connection (capture's replication connection and statement sessions;
 * later apply, verify, rewind, failover). Every connection gets the same session settings, sent in the startup
 * packet (`options`), so that the text a value is written as — by the server's output functions, in query results
 * AND in the walsender's pgoutput stream of a replication connection — is the same everywhere:
 *   TimeZone=UTC               timestamptz as +00 text
 *   DateStyle=ISO, IntervalStyle=postgres   ISO dates, the default interval text
 *   extra_float_digits=3       floats round-trip exactly (shortest exact form)
 *   bytea_output=hex           bytea as \x… text
 *   client_encoding=UTF8       (the driver's own default, kept)
 * Results come back as TEXT, never parsed by the driver (`textTypes`): timestamps stay text with every fractional
 * digit, numeric and int8 exact, json/jsonb as the server wrote it, arrays in their {…} text form.
 * Failures are TidemarkErrors with a PG_* code (postgres/errors.ts), retriable when the network is at fault.
 */
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { readTlsFiles, type TlsFiles } from '../core/tls-files.ts';
import { wrapPgError } from './errors.ts';

/** The endpoint fields of a resolved PostgreSQL endpoint; the password non-enumerable (core/secret.ts). */
export interface PgEndpoint {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly database: string;
  readonly password?: string | undefined;
  readonly connect_timeout_ms?: number | undefined;
  readonly tls?: TlsFiles | undefined;
}

/** The GUCs every tidemark session runs with (see the file comment), as `-c name=value` startup options. */
export const SESSION_SETTINGS: Readonly<Record<string, string>> = {
  TimeZone: 'UTC',
  DateStyle: 'ISO',
  IntervalStyle: 'postgres',
  extra_float_digits: '3',
  bytea_output: 'hex',
};

export function startupOptions(extra: Readonly<Record<string, string>> = {}): string {
  return Object.entries({ ...SESSION_SETTINGS, ...extra })
    .map(([k, v]) => `-c ${k}=${v}`)
    .join(' ');
}

/** A type-parser table that returns every value as the server's text (no Date, no parsed JSON or arrays). */
export const textTypes: pg.CustomTypesConfig = {
  getTypeParser: (() => (value: string) => value) as pg.CustomTypesConfig['getTypeParser'],
};

export interface PgClientOptions {
  /** `'database'`: a logical replication connection (capture's walstream); it also runs simple SQL. */
  readonly replication?: 'database';
  /** application_name shown in pg_stat_activity / pg_stat_replication (default "tidemark"). */
  readonly applicationName?: string;
  /** How config errors name the endpoint's tls keys ("source.tls"); default "tls". */
  readonly tlsKey?: string;
}

/** `pg.Client` options for an endpoint. The result holds the password: never log it. */
export function clientConfig(ep: PgEndpoint, o: PgClientOptions = {}): pg.ClientConfig {
  const ssl: ConnectionOptions | undefined = readTlsFiles(ep.tls, o.tlsKey ?? 'tls');
  return {
    host: ep.host,
    port: ep.port,
    user: ep.user,
    database: ep.database,
    ...(ep.password !== undefined ? { password: ep.password } : {}),
    ...(ssl ? { ssl } : {}),
    connectionTimeoutMillis: ep.connect_timeout_ms ?? 10_000,
    application_name: o.applicationName ?? 'tidemark',
    options: startupOptions(),
    types: textTypes,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    ...(o.replication ? { replication: o.replication } : {}),
  } as pg.ClientConfig;
}

/**
 * Connects; every failure is a TidemarkError naming the endpoint (never the password). A socket error while the
 * client is idle does not crash the process: it surfaces on the next query.
 */
export async function openPgClient(ep: PgEndpoint, o: PgClientOptions = {}): Promise<pg.Client> {
  const client = new pg.Client(clientConfig(ep, o));
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => {});
    throw wrapPgError(err, `cannot connect to PostgreSQL ${ep.host}:${ep.port} as ${ep.user}`, {
      host: ep.host,
      port: ep.port,
      user: ep.user,
      database: ep.database,
    });
  }
  return client;
}

/**
 * Start-up check of the source server. Every failed check becomes one line naming exactly what to change; all
 * lines go into one PrerequisiteError (code PREREQUISITE, not retriable), so an operator fixes everything in
 * one round. `evaluatePrerequisites` is the pure decision, `checkPrerequisites` gathers the facts.
 *
 * Checked: log_bin=ON, binlog_format=ROW, binlog_row_image=FULL, binlog_row_metadata=FULL (MariaDB >= 10.5,
 * MySQL >= 8.0), a non-zero server_id different from source.server_id, on MySQL no transaction compression and
 * no partial JSON updates (zongji cannot decode them), and privileges: REPLICATION SLAVE, BINLOG MONITOR (or
 * REPLICATION CLIENT), SELECT on every schema with included tables, RELOAD on MySQL when a baseline is due.
 */
import type { Logger } from 'pino';
import type { Connection as PromiseConnection, RowDataPacket } from 'mysql2/promise';
import { TidemarkError } from '../../core/errors.ts';
import type { Endpoint } from './errors.ts';
import { sourceError } from './errors.ts';
import type { TableFilter } from '../../mysql/table-filter.ts';
import { canSelectSchema, type Grants, hasGlobal, parseGrants } from '../../mysql/grants.ts';
import { quoteIdent } from '../../mysql/sql.ts';

export class PrerequisiteError extends TidemarkError {
  readonly failures: readonly string[];
  constructor(message: string, failures: readonly string[], context: { host: string; port: number }) {
    super(message, { code: 'PREREQUISITE', retriable: false, context: { ...context, failures: failures.length } });
    this.name = 'PrerequisiteError';
    this.failures = failures;
  }
}

/** What the server told us. `variables` keys are lower case; missing variables are absent. */
export interface ServerFacts {
  readonly version: string;
  readonly variables: ReadonlyMap<string, string>;
  /** CURRENT_USER(): "user@host". */
  readonly currentUser: string;
  readonly grants: Grants;
  /** Schemas holding at least one included table (as far as the user can see). */
  readonly includedSchemas: readonly string[];
}

export interface PrerequisiteOptions {
  readonly endpoint: Endpoint;
  /** source.server_id from the config: the replica id tidemark connects with. */
  readonly serverId: number;
  /** A baseline will be taken (on MySQL it needs RELOAD for FLUSH TABLES WITH READ LOCK). */
  readonly baselineDue: boolean;
  /** Schemas the include patterns name literally (see filter.ts literalSchemas). */
  readonly literalSchemas?: readonly string[];
}

export function isMariaDb(version: string): boolean {
  return /mariadb/i.test(version);
}

function accountSql(currentUser: string): string {
  const at = currentUser.lastIndexOf('@');
  const user = at < 0 ? currentUser : currentUser.slice(0, at);
  const host = at < 0 ? '%' : currentUser.slice(at + 1);
  return `'${user.replaceAll("'", "''")}'@'${host.replaceAll("'", "''")}'`;
}

/** The failed checks, each a complete sentence with the fix; empty when the server is fit. */
export function evaluatePrerequisites(f: ServerFacts, o: PrerequisiteOptions): string[] {
  const at = `${o.endpoint.host}:${o.endpoint.port}`;
  const out: string[] = [];
  const v = (name: string) => f.variables.get(name);
  const mariadb = isMariaDb(f.version);
  const setting = (name: string, want: string, why: string) => {
    const got = v(name);
    if (got !== undefined && got.toUpperCase() !== want) {
      out.push(
        `${name} is ${got} on ${at}; tidemark needs ${want}${why}: set ${name}=${want} in the server config ` +
          `(or SET GLOBAL ${name}=${want}) and restart capture`,
      );
    }
  };

  const logBin = v('log_bin');
  if (logBin === undefined || logBin.toUpperCase() !== 'ON') {
    out.push(
      `log_bin is ${logBin ?? 'not set'} on ${at}; tidemark reads changes from the binary log: set log_bin ` +
        '(e.g. log_bin=mysql-bin) and a unique non-zero server_id in the server config and restart the server',
    );
  }
  setting('binlog_format', 'ROW', '');
  setting('binlog_row_image', 'FULL', ' (complete before and after images)');
  if (v('binlog_row_metadata') === undefined) {
    out.push(
      `${at} runs ${f.version}, which has no binlog_row_metadata; tidemark needs MariaDB 10.5 or later (or MySQL ` +
        '8.0 or later) with binlog_row_metadata=FULL: upgrade the server',
    );
  } else {
    setting('binlog_row_metadata', 'FULL', ' (column names, types and keys in the binlog)');
  }
  const serverId = v('server_id');
  if (serverId === '0') {
    out.push(
      `server_id is 0 on ${at}; binary logging needs a unique non-zero server_id: set server_id=<number> in ` +
        'the server config and restart the server',
    );
  } else if (serverId !== undefined && serverId === String(o.serverId)) {
    out.push(
      `source.server_id ${o.serverId} is the server_id of ${at} itself; tidemark connects as a replica and needs ` +
        'its own id: set source.server_id in the tidemark config to a number no server or replica of this ' +
        'topology uses',
    );
  }
  if (!mariadb) {
    setting('binlog_transaction_compression', 'OFF', ' (compressed transactions cannot be decoded)');
    const partial = v('binlog_row_value_options');
    if (partial?.toUpperCase().includes('PARTIAL_JSON')) {
      out.push(
        `binlog_row_value_options is ${partial} on ${at}; tidemark needs full JSON images: set ` +
          "binlog_row_value_options='' in the server config (or SET GLOBAL binlog_row_value_options='') and " +
          'restart capture',
      );
    }
  }

  const account = accountSql(f.currentUser);
  const roles = f.grants.hasRoles ? ' (privileges held through roles were not considered)' : '';
  const lacks = (priv: string, why: string, grant: string) =>
    out.push(`user ${f.currentUser} lacks ${priv} on ${at}${roles}; tidemark needs it ${why}: ${grant} TO ${account}`);
  if (!hasGlobal(f.grants, 'REPLICATION SLAVE', 'REPLICATION REPLICA')) {
    lacks('REPLICATION SLAVE', 'to read the binlog', 'GRANT REPLICATION SLAVE ON *.*');
  }
  if (!hasGlobal(f.grants, 'BINLOG MONITOR', 'REPLICATION CLIENT')) {
    lacks(
      mariadb ? 'BINLOG MONITOR' : 'REPLICATION CLIENT',
      'to read binlog positions (SHOW MASTER STATUS, SHOW BINARY LOGS)',
      mariadb ? 'GRANT BINLOG MONITOR ON *.*' : 'GRANT REPLICATION CLIENT ON *.*',
    );
  }
  for (const schema of f.includedSchemas) {
    if (!canSelectSchema(f.grants, schema)) {
      lacks(`SELECT on schema ${schema}`, 'to copy its tables', `GRANT SELECT ON ${quoteIdent(schema)}.*`);
    }
  }
  if (!mariadb && o.baselineDue && !hasGlobal(f.grants, 'RELOAD')) {
    lacks('RELOAD', 'for FLUSH TABLES WITH READ LOCK while a MySQL baseline starts', 'GRANT RELOAD ON *.*');
  }
  return out;
}

/** Settings a running server may change under capture: read again periodically while streaming (stream.ts). */
export const RUNTIME_VARIABLES = ['binlog_format', 'binlog_row_image'] as const;

/**
 * The re-check of RUNTIME_VARIABLES while streaming: one line per setting that is no longer what capture needs
 * (the same requirement as at start). Pure.
 */
export function runtimeBinlogProblems(variables: ReadonlyMap<string, string>, ep: Endpoint): string[] {
  const at = `${ep.host}:${ep.port}`;
  const out: string[] = [];
  const format = variables.get('binlog_format');
  if (format !== undefined && format.toUpperCase() !== 'ROW') {
    out.push(
      `binlog_format is ${format} on ${at} (changed while capturing); tidemark needs ROW: sessions opened now log ` +
        'DML as statements, and a statement-logged change to an included table stops capture (STATEMENT_DML). ' +
        'SET GLOBAL binlog_format=ROW (and in the server config), then reconnect the clients',
    );
  }
  const image = variables.get('binlog_row_image');
  if (image !== undefined && image.toUpperCase() !== 'FULL') {
    out.push(
      `binlog_row_image is ${image} on ${at} (changed while capturing); tidemark needs FULL before and after ` +
        'images: SET GLOBAL binlog_row_image=FULL (and in the server config), then reconnect the clients',
    );
  }
  return out;
}

export function prerequisiteError(failures: readonly string[], ep: Endpoint): PrerequisiteError {
  const at = `${ep.host}:${ep.port}`;
  const message =
    failures.length === 1
      ? failures[0]!
      : `${failures.length} prerequisite checks failed on ${at}:\n- ${failures.join('\n- ')}`;
  return new PrerequisiteError(message, failures, { host: ep.host, port: ep.port });
}

const VARIABLES = [
  'log_bin',
  'binlog_format',
  'binlog_row_image',
  'binlog_row_metadata',
  'server_id',
  'binlog_transaction_compression',
  'binlog_row_value_options',
];

/**
 * Queries the facts; the SHOW GRANTS text stays inside (it may carry a password hash). information_schema only
 * lists tables the user may see, so schemas named literally by the include patterns count as included too.
 */
export async function gatherServerFacts(
  conn: PromiseConnection,
  filter: TableFilter,
  literal: readonly string[] = [],
): Promise<ServerFacts> {
  const [[who]] = await conn.query<RowDataPacket[]>('SELECT VERSION() AS v, CURRENT_USER() AS u');
  const [vars] = await conn.query<RowDataPacket[]>(
    `SHOW GLOBAL VARIABLES WHERE Variable_name IN (${VARIABLES.map(() => '?').join(',')})`,
    VARIABLES,
  );
  const variables = new Map<string, string>();
  for (const r of vars) variables.set(String(r['Variable_name']).toLowerCase(), String(r['Value']));
  const [grantRows] = await conn.query<RowDataPacket[]>({ sql: 'SHOW GRANTS', rowsAsArray: true });
  const lines = (grantRows as unknown as unknown[][]).map((r) => String(r[0]));
  const [tables] = await conn.query<RowDataPacket[]>(
    "SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')",
  );
  const schemas = new Set<string>(literal);
  for (const r of tables) if (filter.includesTable(String(r['s']), String(r['t']))) schemas.add(String(r['s']));
  return {
    version: String(who?.['v'] ?? ''),
    currentUser: String(who?.['u'] ?? ''),
    variables,
    grants: parseGrants(lines),
    includedSchemas: [...schemas].sort(),
  };
}

/** Throws a PrerequisiteError listing every problem; returns the facts when the server is fit. */
export async function checkPrerequisites(
  conn: PromiseConnection,
  filter: TableFilter,
  opts: PrerequisiteOptions,
  log: Logger,
): Promise<ServerFacts> {
  let facts: ServerFacts;
  try {
    facts = await gatherServerFacts(conn, filter, opts.literalSchemas);
  } catch (err) {
    throw sourceError(err, opts.endpoint, 'check source prerequisites');
  }
  const failures = evaluatePrerequisites(facts, opts);
  if (failures.length > 0) throw prerequisiteError(failures, opts.endpoint);
  if (facts.includedSchemas.length === 0) {
    log.warn(
      { host: opts.endpoint.host, port: opts.endpoint.port },
      'no existing table matches source.include; capture will pick up matching tables when they are created',
    );
  }
  log.info(
    { version: facts.version, user: facts.currentUser, schemas: facts.includedSchemas.length },
    'source prerequisites met',
  );
  return facts;
}

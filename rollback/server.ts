/**
 * The server a rewind, forward or undo runs on: a target (a replica tidemark applies to, held while the command
 * runs and afterwards) or the source itself (only with --yes and the source.admin account; its undo transactions
 * are then captured like any other change, so every target follows).
 */
import { existsSync } from 'node:fs';
import type mysql from 'mysql2/promise';
import type { Logger } from 'pino';
import { REWIND_CODES, rewindDbError } from './errors.ts';
import {
  type PositionQuery,
  preparePosition,
  readPosition as readStoredPosition,
} from '../apply/mysql/position-store.ts';
import { setHoldSql, type StoredPosition } from '../apply/mysql/position-table.ts';
import { type MysqlEndpoint, openSession } from '../mysql/session.ts';
import { TableMetaCache } from '../apply/mysql/table-meta.ts';
import { sleep, TidemarkError } from '../core/errors.ts';
import { requireCapability } from '../engine/registry.ts';
import { withPassword } from '../core/secret.ts';
import { formatPosition, type MysqlPosition, type SourcePosition } from '../record/position.ts';
import type { CommitEntry } from '../record/record.ts';
import { journalDirOf, lastCommit } from '../journal/index.ts';
import { RollbackIndex } from './index/index.ts';

/** What rewind, forward and undo read of the config file (the loaded config file has it). */
export interface RewindConfig {
  readonly file: string;
  readonly source: Pick<MysqlEndpoint, 'host' | 'port' | 'tls' | 'connect_timeout_ms'> & {
    readonly name: string;
    /** The source's engine (absent: mysql). */
    readonly kind?: string | undefined;
    readonly admin?: { readonly user: string; readonly password?: string } | undefined;
    /** PostgreSQL: the captured database (a rewind of the source itself runs there). */
    readonly database?: string | undefined;
    /** PostgreSQL: tables captured without REPLICA IDENTITY FULL (no before images: rewind refuses them). */
    readonly identity_full_opt_out?: readonly string[] | undefined;
  };
  readonly journal: { readonly dir: string };
  readonly targets: readonly (MysqlEndpoint & {
    readonly name: string;
    readonly kind?: string | undefined;
    readonly site?: string | undefined;
  })[];
  readonly standbys: readonly { readonly name: string; readonly journal_dir: string }[];
}

/**
 * How a rewind or undo of the source learns whether the journal holds everything the source committed. The
 * runtime answers it (it knows the capture account and capture's state file).
 */
export interface SourceProbe {
  /** The source's binlog position now, or null and why it could not be read. */
  readSource(): Promise<{ position: MysqlPosition | null; error?: string | undefined }>;
  /** Has the journal, or a running capture, reached `source`? (`head`: the journal's last commit.) */
  captureReach(
    journalDir: string,
    source: MysqlPosition,
    head: Pick<CommitEntry, 'seq' | 'position'> | null,
  ): Promise<{ caughtUp: boolean; running: boolean; readPosition: SourcePosition | null }>;
}

export interface RewindServer {
  readonly kind: 'target' | 'source';
  readonly name: string;
  /** The server's engine: 'mysql' (MySQL/MariaDB) or 'postgres' (the session's RewindDb, dialect.ts). */
  readonly engine: string;
  /** The endpoint (a PostgreSQL target's section, with its database, when engine is 'postgres'). */
  readonly endpoint: MysqlEndpoint;
  /** The journal this server follows: the primary's, or the mirror at a standby target's site. */
  readonly journalDir: string;
}

/**
 * Resolves --target NAME: a configured target, or the source's own name (needs source.admin, and `yes`: --yes, or
 * a dry run, which changes nothing). A PostgreSQL source only for failback (`failback`: the caller fenced it and
 * captured everything it committed; its own undo is not captured for the targets, which follow another primary).
 */
export function pickServer(
  config: RewindConfig,
  name: string,
  yes: boolean,
  command: string,
  failback = false,
): RewindServer {
  const t = config.targets.find((x) => x.name === name);
  if (t) {
    requireCapability(t, 'rewind', command);
    return { kind: 'target', name, engine: t.kind ?? 'mysql', endpoint: t, journalDir: journalDirOf(config, t) };
  }
  if (name === config.source.name) {
    const engine = config.source.kind ?? 'mysql';
    if (engine !== 'mysql' && !(engine === 'postgres' && failback)) {
      throw new TidemarkError(
        `--target ${name} is the source, a ${config.source.kind} server: ${command} of the source itself is done ` +
          'for MySQL/MariaDB sources only (and by tidemark failback for PostgreSQL); rewind or undo a target instead',
        { code: 'USAGE' },
      );
    }
    if (!yes) {
      throw new TidemarkError(
        `--target ${name} is the source: ${command} would change the primary itself (targets follow through ` +
          'capture). Add --yes to do that (--dry-run shows the plan without it)',
        { code: 'USAGE' },
      );
    }
    const admin = config.source.admin;
    if (!admin) {
      throw new TidemarkError(
        `--target ${name} is the source, and ${config.file} has no source.admin account: add source.admin ` +
          '(user and password_env/password_file) with SELECT, INSERT, UPDATE, DELETE on the captured tables',
        { code: 'USAGE' },
      );
    }
    const { host, port, tls, connect_timeout_ms, database } = config.source;
    // PostgreSQL: the endpoint is read as a target section (rollback/pg-db.ts): its name and database too.
    const pgKeys = engine === 'postgres' ? { name, database } : {};
    const endpoint = withPassword({ host, port, tls, connect_timeout_ms, user: admin.user, ...pgKeys }, admin.password);
    return { kind: 'source', name, engine, endpoint, journalDir: config.journal.dir };
  }
  const names = [...config.targets.map((x) => x.name), `${config.source.name} (the source)`];
  throw new TidemarkError(`--target ${name}: ${config.file} has no such target (it has: ${names.join(', ')})`, {
    code: 'USAGE',
  });
}

/** A session for running plans: FOUND_ROWS, multi-statement, foreign key checks off (like apply). */
export function connect(s: RewindServer): Promise<mysql.Connection> {
  return openSession(s.endpoint, { apply: true, multipleStatements: true, codes: REWIND_CODES });
}

/**
 * Cached generated-column lookup on the server (those columns are never written or compared). Refuses a
 * system-versioned table: its history records every version, so a change cannot be taken back (an undone insert
 * would stay as a history row, and the period columns cannot be set back).
 */
export function generatedColumns(
  conn: mysql.Connection,
): (schema: string, table: string) => Promise<ReadonlySet<string>> {
  const cache = new TableMetaCache(async (sql) => (await conn.query<mysql.RowDataPacket[]>(sql))[0]);
  return async (schema, table) => {
    const meta = await cache.get(schema, table);
    if (meta.period) {
      throw new TidemarkError(
        `${schema}.${table} is a system-versioned table: its history cannot be taken back, so rewind, forward ` +
          'and undo refuse it; choose a window without its changes, or use restore',
        { code: 'UNSUPPORTED_VERSIONED', context: { schema, table } },
      );
    }
    return meta.skip;
  };
}

/** Runs a statement on a rewind session for the position-store helpers. */
function positionQuery(conn: mysql.Connection): PositionQuery {
  return async (sql) => (await conn.query(sql))[0];
}

/** The target's position row (creating the table/column/row like the applier would). */
export async function readPosition(conn: mysql.Connection, source: string): Promise<StoredPosition> {
  try {
    return await preparePosition(positionQuery(conn), source);
  } catch (err) {
    throw rewindDbError(err, 'reading the position table', { source });
  }
}

/**
 * Holds the target (apply pauses at its next group; this waits for a group in flight) and returns the position
 * it then stores. `restore()` puts the previous hold back (after a refusal, a dry run or a failure).
 */
export async function holdTarget(
  conn: mysql.Connection,
  source: string,
  hold: string,
): Promise<{ stored: StoredPosition; restore: () => Promise<void> }> {
  const before = await readPosition(conn, source);
  await conn.query(setHoldSql(source, hold));
  const stored = await readStoredPosition(positionQuery(conn), source);
  if (stored.ddlPendingSeq !== null) {
    await conn.query(setHoldSql(source, before.hold));
    throw new TidemarkError(
      `the target is applying a DDL statement (seq ${stored.ddlPendingSeq}); try again when it is done`,
      { code: 'REWIND_BUSY', retriable: true },
    );
  }
  return { stored, restore: async () => void (await conn.query(setHoldSql(source, before.hold))) };
}

/**
 * For a rewind/undo of the source itself: the journal must hold everything the source committed, or the window
 * would miss the newest changes. Waits up to `waitMs` for capture to catch up.
 */
export async function checkSourceCaptured(
  config: RewindConfig,
  probe: SourceProbe,
  log: Logger,
  signal: AbortSignal,
  waitMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    // With the capture account: it has the privilege to read the binlog position; source.admin need not.
    const read = await probe.readSource();
    if (!read.position) throw new TidemarkError(`cannot read the source position: ${read.error}`, { code: 'CONNECT' });
    const server = read.position;
    const head = await lastCommit(config.journal.dir);
    // The journal's last commit reached the source's position, or a running capture read past it (the newest
    // transactions may touch only tables it does not capture: capture's read state beside the journal).
    const reach = await probe.captureReach(config.journal.dir, server, head);
    if (reach.caughtUp) return;
    if (Date.now() > deadline) {
      const capture = reach.running
        ? `capture has read up to ${reach.readPosition ? formatPosition(reach.readPosition) : 'nothing'}`
        : 'capture is not running';
      throw new TidemarkError(
        `the journal is behind the source (journal at ${head ? formatPosition(head.position) : 'nothing'}, source ` +
          `at ${formatPosition(server)}; ${capture}): run tidemark run (capture) until it catches up, then try again`,
        { code: 'REWIND_BEHIND', retriable: true },
      );
    }
    log.info('waiting for capture to reach the source position');
    await sleep(500, signal);
  }
}

/** Opens the rollback index and brings it up to the journal head, logging progress on long catch-ups. */
export async function openIndex(
  config: Pick<RewindConfig, 'journal'>,
  log: Logger,
  signal?: AbortSignal,
  dir = config.journal.dir,
): Promise<RollbackIndex> {
  if (!existsSync(dir)) {
    throw new TidemarkError(`no journal at ${dir}: nothing was captured yet (run tidemark run first)`, {
      code: 'NO_JOURNAL',
    });
  }
  // A small page cache: these commands read the index sparsely, and the memory goes to the plan's journal reads.
  const index = await RollbackIndex.open({ journalDir: dir, log, cacheMb: 16 });
  try {
    await index.catchUp({
      ...(signal ? { signal } : {}),
      onProgress: (p) =>
        log.info({ lsn: p.lsn.toString(), head: p.head.toString(), changes: p.changes }, 'indexing the journal'),
    });
  } catch (err) {
    index.close();
    throw err;
  }
  return index;
}

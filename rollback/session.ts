/**
 * What rewind, forward and undo share: the server they work on, the rollback index brought up to date, a session
 * on the server, the open journal segments, and the target's hold.
 *
 *   const s = await RewindSession.open(ctx, server);
 *   try {
 *     const head = await s.begin(`undo in progress since ${s.now}`);   // holds the target (not on a dry run)
 *     …plan, s.db.runPlan(framed(s.lockItems(hold), body, last), …)…
 *     s.keepHold();                                                     // the plan ran or the script was written
 *   } finally {
 *     await s.close();                  // puts the previous hold back unless kept; closes everything
 *   }
 */
import type { Logger } from 'pino';
import { TidemarkError } from '../core/errors.ts';
import { serverFlavor } from '../mysql/session.ts';
import { SegmentFiles } from '../journal/index.ts';
import type { PgTargetSection } from '../apply/postgres/config.ts';
import type { RewindDb } from './dialect.ts';
import type { PlanItem } from './guard.ts';
import type { RollbackIndex } from './index/index.ts';
import type { ItemContext } from './items.ts';
import type { MysqlRewindDb } from './mysql-db.ts';
import {
  checkSourceCaptured,
  connect,
  openIndex,
  type RewindConfig,
  type RewindServer,
  type SourceProbe,
} from './server.ts';

/**
 * A session on the server in its engine's RewindDb (dialect.ts). Each engine's module (its guards, executor and
 * client: ~30 modules for PostgreSQL with pg) loads only when a server of that engine is rewound.
 */
async function openDb(config: RewindConfig, server: RewindServer): Promise<RewindDb> {
  if (server.engine === 'postgres') {
    const { PgRewindDb } = await import('./pg-db.ts');
    return PgRewindDb.open(server.endpoint as unknown as PgTargetSection, config.source.identity_full_opt_out);
  }
  if (server.engine !== 'mysql') {
    throw new TidemarkError(`${server.name}: rewind, forward and undo know no "${server.engine}" server`, {
      code: 'USAGE',
    });
  }
  const { MysqlRewindDb } = await import('./mysql-db.ts');
  const conn = await connect(server);
  try {
    return new MysqlRewindDb(conn, await serverFlavor(conn));
  } catch (err) {
    await conn.end().catch(() => conn.destroy());
    throw err;
  }
}

const isMysql = (db: RewindDb): db is MysqlRewindDb => db.dialect.engine === 'mysql';

export interface SessionOptions {
  readonly config: RewindConfig;
  readonly log: Logger;
  /** Aborted on SIGINT/SIGTERM. */
  readonly signal: AbortSignal;
  /** Asked before a rewind or undo of the source (the command line builds it from the config). */
  readonly sourceProbe: SourceProbe;
  readonly dryRun: boolean;
  /**
   * The caller made sure the journal holds everything the source committed (failback's catch-up, which also
   * counts binlog events capture skips): the check against the source's binlog position is left out.
   */
  readonly sourceCaptured?: boolean | undefined;
}

export class RewindSession {
  readonly server: RewindServer;
  readonly index: RollbackIndex;
  /** The session on the server, in its engine's terms (dialect.ts). */
  readonly db: RewindDb;
  readonly ctx: ItemContext;
  /** When the command started (ISO 8601), for hold texts and script headers. */
  readonly now = new Date().toISOString();
  readonly #o: SessionOptions;
  readonly #files: SegmentFiles;
  #restore: (() => Promise<void>) | null = null;
  #head = -1n;

  private constructor(
    o: SessionOptions,
    server: RewindServer,
    index: RollbackIndex,
    db: RewindDb,
    ctx: ItemContext,
    files: SegmentFiles,
  ) {
    this.#o = o;
    this.server = server;
    this.index = index;
    this.db = db;
    this.ctx = ctx;
    this.#files = files;
  }

  /**
   * For the source itself, first waits until the journal holds everything it committed; then opens the index
   * (caught up) and a session on the server.
   */
  static async open(o: SessionOptions, server: RewindServer): Promise<RewindSession> {
    const { config, log, signal } = o;
    if (server.kind === 'source' && o.sourceCaptured !== true)
      await checkSourceCaptured(config, o.sourceProbe, log, signal);
    const index = await openIndex(config, log, signal, server.journalDir);
    let db: RewindDb;
    try {
      db = await openDb(config, server);
    } catch (err) {
      index.close();
      throw err;
    }
    const files = new SegmentFiles();
    const ctx: ItemContext = {
      index,
      journalDir: server.journalDir,
      // MySQL's flavor (its statements differ between MariaDB and MySQL); the dialect writes the statements.
      flavor: isMysql(db) ? db.flavor : 'mysql',
      skipColumns: (schema, table) => db.skipColumns(schema, table),
      files,
      dialect: db.dialect,
      // MySQL's runs of rows merge into multi-row statements (batch.ts) as the plan is produced.
      ...(isMysql(db) ? { batch: {} } : {}),
    };
    return new RewindSession(o, server, index, db, ctx, files);
  }

  get source(): string {
    return this.#o.config.source.name;
  }

  /**
   * What the server holds now, as a seq (-1n: a target with nothing applied). A target is held first with the
   * text `activity` (unless this is a dry run, which changes nothing), so that the point cannot move while the
   * command plans; the source's head is the journal head.
   */
  async begin(activity: string): Promise<bigint> {
    if (this.server.kind === 'source') {
      this.#head = this.index.listTxs({ order: 'desc', limit: 1 })[0]?.commitSeq ?? -1n;
    } else if (this.#o.dryRun) {
      this.#head = (await this.db.readPosition(this.source)).state?.seq ?? -1n;
    } else {
      const h = await this.db.holdTarget(this.source, activity);
      this.#restore = h.restore;
      this.#head = h.stored.state?.seq ?? -1n;
    }
    return this.#head;
  }

  /**
   * The first item of a plan on a target: locks the position row, re-checks that it still holds the head begin()
   * found, and leaves `hold` there. Nothing on the source.
   */
  lockItems(hold: string): PlanItem[] {
    if (this.server.kind !== 'target') return [];
    const what = `the target still holds seq ${this.#head} (no apply or rewind ran since it was planned)`;
    const sql = this.db.lockSql(this.source, this.#head, hold);
    return [{ kind: 'stmt', stmt: { sql, expect: 1, what, seq: this.#head, kind: 'update' } }];
  }

  /** Releases the hold now (forward --to-head with nothing left to redo). */
  async release(): Promise<void> {
    await this.db.setHold(this.source, null);
    this.#restore = null;
  }

  /** The plan ran, or the script that leaves the hold was written: close() must not put the old hold back. */
  keepHold(): void {
    this.#restore = null;
  }

  /** Puts the previous hold back unless kept, then closes the index, the journal files and the session. */
  async close(): Promise<void> {
    try {
      await this.#restore?.().catch(() => {});
    } finally {
      this.index.close();
      await this.#files.close();
      await this.db.close();
    }
  }
}

/**
 * The PostgreSQL RewindDb (rollback/dialect.ts): a rewind session on a PostgreSQL target — pg-guard.ts statements,
 * executePgPlan or the psql script (pg-script.ts), the position row `tidemark.applied` of apply/postgres
 * (position.ts: the same hold the applier respects). No cascading foreign keys to refuse: logical decoding journals
 * the rows a cascade changed, and the plan runs with session_replication_role = replica, so nothing cascades twice.
 * No object statements: a PostgreSQL journal carries no object DDL (capture/postgres refuses schema changes).
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { openApplySession, preparePositionTable } from '../apply/postgres/applier.ts';
import type { PgTargetSection } from '../apply/postgres/config.ts';
import { lockForRewindSql, parseStored, selectSql, setHoldSql, setPointSql } from '../apply/postgres/position.ts';
import { FkIndex } from '../apply/mysql/fk.ts';
import { TidemarkError } from '../core/errors.ts';
import type { StoredPosition } from '../engine/target.ts';
import type { RewindDb, RollbackDialect } from './dialect.ts';
import type { ObjectWork } from './objects-run.ts';
import type { PlanOutput, PlanResult } from './run-plan.ts';
import type { PlanItem } from './guard.ts';
import { rewindPgError } from './pg-errors.ts';
import { executePgPlan } from './pg-execute.ts';
import { pgGuardedStatements } from './pg-guard.ts';
import { writePgScript } from './pg-script.ts';

export const pgDialect: RollbackDialect = {
  engine: 'postgres',
  guarded: (e, dir, opts) => pgGuardedStatements(e, dir, opts),
};

const NONE: ReadonlySet<string> = new Set();

export class PgRewindDb implements RewindDb {
  readonly client: pg.Client;
  readonly dialect = pgDialect;
  readonly #optOut: ReadonlySet<string>;

  private constructor(client: pg.Client, optOut: ReadonlySet<string>) {
    this.client = client;
    this.#optOut = optOut;
  }

  /** `optOut`: "schema.table" names captured without REPLICA IDENTITY FULL (no before images: refused). */
  static async open(t: PgTargetSection, optOut: readonly string[] = []): Promise<PgRewindDb> {
    return new PgRewindDb(await openApplySession(t, 'tidemark-rewind'), new Set(optOut));
  }

  async skipColumns(schema: string, table: string): Promise<ReadonlySet<string>> {
    if (this.#optOut.has(`${schema}.${table}`)) {
      throw new TidemarkError(
        `${schema}.${table} is captured without REPLICA IDENTITY FULL (source.identity_full_opt_out): the journal ` +
          'has no before images of its updates and deletes, so rewind, forward and undo refuse it; choose a window ' +
          'without its changes, or ALTER TABLE … REPLICA IDENTITY FULL, take it out of the opt-out and re-baseline',
        { code: 'REWIND_NO_BEFORE_IMAGE', context: { schema, table } },
      );
    }
    return NONE; // pgoutput sends no generated columns: the journal's rows carry none
  }

  async readPosition(source: string): Promise<StoredPosition> {
    try {
      await preparePositionTable(this.client, source);
      return parseStored((await this.client.query(selectSql, [source])).rows[0]);
    } catch (err) {
      throw rewindPgError(err, 'reading tidemark.applied', { source });
    }
  }

  async holdTarget(source: string, hold: string): Promise<{ stored: StoredPosition; restore: () => Promise<void> }> {
    const before = await this.readPosition(source);
    // Waits for an apply transaction in flight (it holds the row until COMMIT); the applier's next store then
    // matches no row (it stores only while hold IS NULL) and apply pauses.
    await this.setHold(source, hold);
    const stored = await this.readPosition(source);
    return { stored, restore: () => this.setHold(source, before.hold) };
  }

  async setHold(source: string, hold: string | null): Promise<void> {
    try {
      await this.client.query(setHoldSql, [source, hold]);
    } catch (err) {
      throw rewindPgError(err, 'setting the hold in tidemark.applied', { source });
    }
  }

  lockSql = lockForRewindSql;
  pointSql = setPointSql;

  async fks(): Promise<FkIndex> {
    return new FkIndex([]);
  }

  async runPlan(items: AsyncIterable<PlanItem>, o: PlanOutput): Promise<PlanResult> {
    if (o.after) throw new Error('object statements on a PostgreSQL target'); // withObjects refused them already
    if (o.sqlFile !== undefined) {
      const r = await writePgScript(o.sqlFile, items, o.header);
      return { executed: false, statements: r.statements, rows: 0, txs: 0 };
    }
    const started = Date.now();
    const r = await executePgPlan(this.client, items, {
      ...(o.signal ? { signal: o.signal } : {}),
      onProgress: (p) => o.log.info({ rows: p.rows }, 'working'),
    });
    o.log.info({ ...r, seconds: (Date.now() - started) / 1000 }, 'committed');
    return { executed: true, ...r };
  }

  withObjects<T>(work: ObjectWork, _log: Logger, rows: () => Promise<T>): Promise<T> {
    if (work.toPoint.length > 0) {
      throw new TidemarkError('the window holds object statements, which a PostgreSQL target cannot replay', {
        code: 'REWIND_DDL',
      });
    }
    return rows();
  }

  scriptHint(): string {
    return 'psql -v ON_ERROR_STOP=1 -h HOST -p PORT -U USER -d DATABASE -f FILE';
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => {});
  }
}

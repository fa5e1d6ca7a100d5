/**
 * The MySQL/MariaDB RewindDb (dialect.ts): the rewind session on a mysql2 connection, over what rollback/ always
 * did for MySQL — guard.ts statements, executePlan / writeScript (run-plan.ts), the position table of
 * apply/mysql/position-table.ts, cascading foreign keys from information_schema, object statements.
 */
import type mysql from 'mysql2/promise';
import type { Logger } from 'pino';
import { lockForRewindSql, setHoldSql, setPointSql } from '../apply/mysql/position-table.ts';
import type { Flavor } from '../mysql/sql.ts';
import { serverFks } from './cascade.ts';
import type { RewindDb, RollbackDialect } from './dialect.ts';
import { guardedStatements } from './guard.ts';
import { withObjects } from './objects-run.ts';
import { runPlan } from './run-plan.ts';
import { generatedColumns, holdTarget, readPosition } from './server.ts';

export function mysqlDialect(flavor: Flavor): RollbackDialect {
  return { engine: 'mysql', guarded: (e, dir, opts) => guardedStatements(e, dir, { ...opts, flavor }) };
}

export class MysqlRewindDb implements RewindDb {
  readonly conn: mysql.Connection;
  readonly flavor: Flavor;
  readonly dialect: RollbackDialect;
  readonly skipColumns: (schema: string, table: string) => Promise<ReadonlySet<string>>;

  constructor(conn: mysql.Connection, flavor: Flavor) {
    this.conn = conn;
    this.flavor = flavor;
    this.dialect = mysqlDialect(flavor);
    this.skipColumns = generatedColumns(conn);
  }

  readPosition(source: string) {
    return readPosition(this.conn, source);
  }

  holdTarget(source: string, hold: string) {
    return holdTarget(this.conn, source, hold);
  }

  async setHold(source: string, hold: string | null): Promise<void> {
    await this.conn.query(setHoldSql(source, hold));
  }

  lockSql = lockForRewindSql;
  pointSql = setPointSql;

  fks() {
    return serverFks(async (sql) => (await this.conn.query(sql))[0]);
  }

  runPlan(items: Parameters<RewindDb['runPlan']>[0], o: Parameters<RewindDb['runPlan']>[1]) {
    return runPlan(this.conn, items, o);
  }

  withObjects<T>(work: Parameters<RewindDb['withObjects']>[0], log: Logger, rows: () => Promise<T>): Promise<T> {
    return withObjects(this.conn, work, log, rows);
  }

  scriptHint(comments: boolean): string {
    return `mariadb ${comments ? '--comments ' : ''}-h HOST -P PORT -u USER -p < FILE`;
  }

  async close(): Promise<void> {
    await this.conn.end().catch(() => this.conn.destroy());
  }
}

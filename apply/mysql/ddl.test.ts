import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/log.ts';
import type { DdlEntry } from '../../record/record.ts';
import { SQL_MODE } from '../../mysql/session.ts';
import { executeDdl } from './ddl.ts';
import type { QueryFn, QueryKind } from './exec.ts';

const entry = (sql: string): DdlEntry => ({
  kind: 'ddl',
  source: 's',
  seq: 7n,
  txId: 't',
  schema: 'shop',
  tables: [],
  sql,
});

/** A fake replica: records each query; `answer` may return rows or throw. */
function fake(answer: (kind: QueryKind, sql: string) => unknown = () => []) {
  const seen: string[] = [];
  const q: QueryFn = async (kind, sql) => {
    seen.push(`${kind}: ${sql}`);
    return answer(kind, sql);
  };
  return { q, seen };
}

const errno = (n: number) => Object.assign(new Error(`errno ${n}`), { errno: n });

describe('executeDdl with schema objects', () => {
  it('creates a trigger with its body guarded', async () => {
    const f = fake();
    await executeDdl(f.q, entry('CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW SET @n = 1'), false, silentLogger);
    expect(f.seen).toEqual([
      'use: USE `shop`',
      'ddl: SET SESSION sql_mode = @@GLOBAL.sql_mode',
      'ddl: CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW IF @tidemark_apply IS NULL THEN\nSET @n = 1\n;\nEND IF',
      `ddl: SET SESSION sql_mode = '${SQL_MODE}'`,
      'meta: SHOW WARNINGS',
    ]);
  });

  it('creates an event disabled on the replica', async () => {
    const f = fake();
    await executeDdl(f.q, entry('CREATE EVENT e ON SCHEDULE EVERY 1 SECOND DO SELECT 1'), false, silentLogger);
    expect(f.seen.filter((x) => x.startsWith('ddl') && !x.includes('sql_mode'))).toEqual([
      'ddl: CREATE EVENT e ON SCHEDULE EVERY 1 SECOND DISABLE ON SLAVE DO SELECT 1',
    ]);
  });

  it('enables an event DISABLE ON SLAVE on the replica, keeping its definer; one still ENABLED is disabled', async () => {
    const f = fake((_kind, sql) =>
      sql.includes("STATUS = 'ENABLED'")
        ? [{ s: 'shop', n: 'e', d: 'root@localhost' }]
        : sql.startsWith('SELECT DEFINER')
          ? [{ d: 'app@%' }]
          : [],
    );
    await executeDdl(f.q, entry('ALTER EVENT e ENABLE'), false, silentLogger);
    expect(f.seen.filter((x) => x.startsWith('ddl') && !x.includes('sql_mode'))).toEqual([
      'ddl: ALTER DEFINER=`app`@`%` EVENT e DISABLE ON SLAVE',
      'ddl: ALTER DEFINER=`root`@`localhost` EVENT `shop`.`e` DISABLE ON SLAVE',
    ]);
  });

  it('takes a DROP of an object the replica lacks as done; other errors stay errors', async () => {
    const missing = fake((kind) => {
      if (kind === 'ddl') throw errno(1360);
      return [];
    });
    await expect(executeDdl(missing.q, entry('DROP TRIGGER tr'), false, silentLogger)).resolves.toBeUndefined();
    const denied = fake((kind) => {
      if (kind === 'ddl') throw errno(1227);
      return [];
    });
    await expect(executeDdl(denied.q, entry('DROP TRIGGER tr'), false, silentLogger)).rejects.toThrow('errno 1227');
    // Not an object DROP: an unknown table is still an error (outside a re-run).
    const table = fake((kind) => {
      if (kind === 'ddl') throw errno(1051);
      return [];
    });
    await expect(executeDdl(table.q, entry('DROP TABLE t'), false, silentLogger)).rejects.toThrow('errno 1051');
  });
});

describe('executeDdl with account statements', () => {
  it('runs them as they are and redacts a failure that quotes a password', async () => {
    const sql = "ALTER USER 'app'@'%' IDENTIFIED BY 'pw-secret' WITH BOGUS";
    const msg = "You have an error in your SQL syntax; near 'IDENTIFIED BY 'pw-secret' WITH BOGUS' at line 1";
    const f = fake((kind) => {
      if (kind === 'ddl') throw Object.assign(new Error(msg), { errno: 1064, sqlMessage: msg });
      return [];
    });
    const err = await executeDdl(f.q, entry(sql), false, silentLogger).catch((e: unknown) => e);
    expect(f.seen).toEqual(['use: USE `shop`', `ddl: ${sql}`]);
    expect(String((err as Error).message)).not.toContain('pw-secret');
    expect(String((err as { sqlMessage: string }).sqlMessage)).not.toContain('pw-secret');
    expect((err as { errno: number }).errno).toBe(1064);
  });

  it('a re-run CREATE USER whose account is already there counts as applied', async () => {
    const f = fake((kind) => {
      if (kind === 'ddl') throw errno(1396);
      return [];
    });
    await executeDdl(f.q, entry("CREATE USER 'app'@'%'"), true, silentLogger);
    await expect(executeDdl(f.q, entry("CREATE USER 'app'@'%'"), false, silentLogger)).rejects.toThrow(/1396/);
  });
});

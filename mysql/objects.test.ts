import { describe, expect, it } from 'vitest';
import {
  alterKeepingDefiner,
  disableOnReplicaSql,
  createClauses,
  createDisabledOnReplica,
  definerOf,
  dropIfExistsSql,
  enableEventSql,
  enabledEventsSql,
  guardTrigger,
  normaliseDefinition,
  parseObjectDdl,
  replicaObjectSql,
  unguardTrigger,
} from './objects.ts';
import { tokenize } from './sql-text.ts';

const parse = (sql: string, db = 'd') => parseObjectDdl(tokenize(sql), db);

describe('parseObjectDdl', () => {
  it('reads CREATE of each kind with the prefixes the binlog writes', () => {
    expect(
      parse('CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY INVOKER VIEW `v1` AS select 1'),
    ).toEqual({ verb: 'CREATE', kind: 'view', objects: [{ schema: 'd', name: 'v1' }] });
    expect(parse("CREATE OR REPLACE DEFINER='u'@'%' VIEW s.v AS SELECT 1")).toMatchObject({
      verb: 'CREATE',
      kind: 'view',
      objects: [{ schema: 's', name: 'v' }],
    });
    expect(parse('CREATE DEFINER=`root`@`localhost` PROCEDURE `p`(IN a INT) BEGIN SELECT a; END')).toMatchObject({
      kind: 'procedure',
      objects: [{ schema: 'd', name: 'p' }],
    });
    expect(parse('CREATE DEFINER=CURRENT_USER() FUNCTION IF NOT EXISTS x.f() RETURNS INT RETURN 1')).toMatchObject({
      kind: 'function',
      objects: [{ schema: 'x', name: 'f' }],
    });
    expect(parse('CREATE AGGREGATE FUNCTION g(x INT) RETURNS INT BEGIN RETURN 1; END')).toMatchObject({
      kind: 'function',
    });
    expect(parse('CREATE DEFINER=root@localhost EVENT `e` ON SCHEDULE EVERY 1 HOUR DO DELETE FROM t')).toMatchObject({
      kind: 'event',
      objects: [{ schema: 'd', name: 'e' }],
    });
  });

  it('reads a trigger and its table', () => {
    expect(
      parse('CREATE DEFINER=`root`@`localhost` TRIGGER `tr` BEFORE INSERT ON `o`.`t` FOR EACH ROW SET NEW.a = 1'),
    ).toEqual({
      verb: 'CREATE',
      kind: 'trigger',
      objects: [{ schema: 'd', name: 'tr' }],
      table: { schema: 'o', table: 't' },
    });
    expect(parse('CREATE TRIGGER s.tr AFTER DELETE ON t FOR EACH ROW DELETE FROM u')?.table).toEqual({
      schema: 's',
      table: 't',
    });
  });

  it('reads ALTER and DROP, lists and renames', () => {
    expect(parse('ALTER ALGORITHM=MERGE DEFINER=`a`@`b` SQL SECURITY DEFINER VIEW v AS SELECT 2')).toMatchObject({
      verb: 'ALTER',
      kind: 'view',
    });
    expect(parse('ALTER PROCEDURE p COMMENT "x"')).toMatchObject({ verb: 'ALTER', kind: 'procedure' });
    expect(parse('ALTER DEFINER=`r`@`h` EVENT e RENAME TO s2.e2')).toEqual({
      verb: 'ALTER',
      kind: 'event',
      objects: [
        { schema: 'd', name: 'e' },
        { schema: 's2', name: 'e2' },
      ],
    });
    expect(parse('DROP VIEW IF EXISTS a, s.b RESTRICT')).toEqual({
      verb: 'DROP',
      kind: 'view',
      objects: [
        { schema: 'd', name: 'a' },
        { schema: 's', name: 'b' },
      ],
    });
    expect(parse('DROP TRIGGER IF EXISTS s.tr')).toMatchObject({ verb: 'DROP', kind: 'trigger' });
    expect(parse('DROP FUNCTION f')).toMatchObject({ kind: 'function' });
    expect(parse('DROP EVENT e')).toMatchObject({ kind: 'event' });
  });

  it('is null for tables, users, loadable functions and ALTER TRIGGER', () => {
    expect(parse('CREATE TABLE t (a INT)')).toBeNull();
    expect(parse('CREATE USER u')).toBeNull();
    expect(parse('DROP TABLE v')).toBeNull();
    expect(parse("CREATE FUNCTION metaphon RETURNS STRING SONAME 'udf_example.so'")).toBeNull();
    expect(parse('ALTER TRIGGER tr')).toBeNull();
    expect(parse('SELECT 1')).toBeNull();
  });
});

describe('guardTrigger', () => {
  const src =
    'CREATE DEFINER=`root`@`localhost` TRIGGER tr AFTER INSERT ON t FOR EACH ROW BEGIN\n  INSERT INTO l VALUES (NEW.id);\nEND';

  it('wraps the body in IF @tidemark_apply IS NULL … END IF, and undoes it', () => {
    const g = guardTrigger(src);
    expect(g).toBe(
      'CREATE DEFINER=`root`@`localhost` TRIGGER tr AFTER INSERT ON t FOR EACH ROW IF @tidemark_apply IS NULL THEN\n' +
        'BEGIN\n  INSERT INTO l VALUES (NEW.id);\nEND\n;\nEND IF',
    );
    expect(unguardTrigger(g)).toBe(src);
    expect(guardTrigger(g)).toBe(g); // never nested
  });

  it('keeps FOLLOWS/PRECEDES before the body and a single-statement body', () => {
    const s = 'CREATE TRIGGER b BEFORE UPDATE ON t FOR EACH ROW PRECEDES `a` SET NEW.x = "FOR EACH ROW";';
    const g = guardTrigger(s);
    expect(g).toBe(
      'CREATE TRIGGER b BEFORE UPDATE ON t FOR EACH ROW PRECEDES `a` IF @tidemark_apply IS NULL THEN\nSET NEW.x = "FOR EACH ROW"\n;\nEND IF',
    );
    expect(unguardTrigger(g)).toBe(s.slice(0, -1));
  });

  it('leaves every other statement alone', () => {
    for (const s of ['CREATE VIEW v AS SELECT 1', 'DROP TRIGGER tr', 'CREATE TABLE t (a INT)']) {
      expect(guardTrigger(s)).toBe(s);
    }
  });
});

describe('normaliseDefinition', () => {
  it('strips the guard, reads DISABLE ON SLAVE as ENABLE, keeps the definer', () => {
    const src = 'CREATE DEFINER=`u`@`h` TRIGGER tr AFTER INSERT ON t FOR EACH ROW INSERT INTO l VALUES (1)';
    expect(normaliseDefinition('trigger', guardTrigger(src))).toBe(normaliseDefinition('trigger', src));
    expect(normaliseDefinition('trigger', guardTrigger(src))).toContain('DEFINER=`u`@`h`');
    const ev = "CREATE DEFINER=`u`@`h` EVENT `e` ON SCHEDULE EVERY 1 HOUR STARTS '2030-01-01 00:00:00' ON COMPLETION";
    expect(normaliseDefinition('event', `${ev} NOT PRESERVE DISABLE ON SLAVE DO DELETE FROM t`)).toBe(
      `${ev} NOT PRESERVE ENABLE DO DELETE FROM t`,
    );
    // A source-side DISABLE stays DISABLE: it does not compare equal to an enabled one.
    expect(normaliseDefinition('event', `${ev} NOT PRESERVE DISABLE DO DELETE FROM t`)).toContain(' DISABLE DO');
    expect(normaliseDefinition('view', 'CREATE VIEW v AS select 1 \n')).toBe('CREATE VIEW v AS select 1');
  });
});

describe('event statements', () => {
  it('creates or enables an event DISABLE ON SLAVE on the replica, in the statement itself', () => {
    expect(createDisabledOnReplica('CREATE EVENT e ON SCHEDULE EVERY 1 SECOND DO INSERT INTO t VALUES (1)')).toBe(
      'CREATE EVENT e ON SCHEDULE EVERY 1 SECOND DISABLE ON SLAVE DO INSERT INTO t VALUES (1)',
    );
    const ev = "CREATE DEFINER=`u`@`h` EVENT `enable` ON SCHEDULE EVERY 1 HOUR STARTS '2030-01-01' ON COMPLETION";
    expect(createDisabledOnReplica(`${ev} NOT PRESERVE ENABLE COMMENT 'do' DO DELETE FROM t`)).toBe(
      `${ev} NOT PRESERVE DISABLE ON SLAVE COMMENT 'do' DO DELETE FROM t`,
    );
    expect(createDisabledOnReplica(`${ev} PRESERVE COMMENT 'enable' DO DELETE FROM t`)).toBe(
      `${ev} PRESERVE DISABLE ON SLAVE COMMENT 'enable' DO DELETE FROM t`,
    );
    // A source-side DISABLE (or DISABLE ON SLAVE) stays; an ALTER naming no status keeps the replica's.
    expect(createDisabledOnReplica(`${ev} NOT PRESERVE DISABLE DO DELETE FROM t`)).toContain(' DISABLE DO');
    expect(createDisabledOnReplica('ALTER EVENT s.e enable')).toBe('ALTER EVENT s.e DISABLE ON SLAVE');
    expect(createDisabledOnReplica('ALTER EVENT e ON SCHEDULE EVERY 2 SECOND DO SELECT 1')).toBe(
      'ALTER EVENT e ON SCHEDULE EVERY 2 SECOND DO SELECT 1',
    );
    expect(createDisabledOnReplica('DROP EVENT e')).toBe('DROP EVENT e');
    expect(createDisabledOnReplica('CREATE TABLE t (enable INT)')).toBe('CREATE TABLE t (enable INT)');
  });

  it('keeps the definer through an ALTER EVENT that names none', () => {
    expect(alterKeepingDefiner('ALTER EVENT e ENABLE', 'root@127.0.0.1')).toBe(
      'ALTER DEFINER=`root`@`127.0.0.1` EVENT e ENABLE',
    );
    expect(alterKeepingDefiner('ALTER DEFINER=`a`@`b` EVENT e ENABLE', 'root@h')).toBe(
      'ALTER DEFINER=`a`@`b` EVENT e ENABLE',
    );
  });

  it('quotes names and values', () => {
    expect(disableOnReplicaSql({ schema: 'a`b', name: 'e', definer: 'u@x@10.0.%' })).toBe(
      'ALTER DEFINER=`u@x`@`10.0.%` EVENT `a``b`.`e` DISABLE ON SLAVE',
    );
    expect(enableEventSql({ schema: 's', name: 'e', definer: 'r@localhost' })).toBe(
      'ALTER DEFINER=`r`@`localhost` EVENT `s`.`e` ENABLE',
    );
    expect(enabledEventsSql([{ schema: "o'k", name: 'e' }])).toContain("IN (('o\\'k', 'e'))");
  });
});

describe('rewind helpers', () => {
  it('reads OR REPLACE and IF NOT EXISTS', () => {
    expect(createClauses('CREATE OR REPLACE DEFINER=`a`@`b` VIEW v AS SELECT 1')).toEqual({
      orReplace: true,
      ifNotExists: false,
    });
    expect(createClauses('CREATE DEFINER=u@h PROCEDURE IF NOT EXISTS p() SELECT 1')).toEqual({
      orReplace: false,
      ifNotExists: true,
    });
    expect(createClauses('CREATE VIEW v AS SELECT 1')).toEqual({ orReplace: false, ifNotExists: false });
  });

  it('reads the definer of a CREATE as information_schema writes it', () => {
    expect(definerOf('CREATE DEFINER=`root`@`localhost` EVENT e ON SCHEDULE EVERY 1 HOUR DO SELECT 1')).toBe(
      'root@localhost',
    );
    expect(definerOf("CREATE DEFINER='a''b'@'10.0.%' VIEW v AS SELECT 1")).toBe("a'b@10.0.%");
    expect(definerOf('CREATE DEFINER=u@h PROCEDURE p() SELECT 1')).toBe('u@h');
    expect(definerOf('CREATE DEFINER=CURRENT_USER EVENT e ON SCHEDULE EVERY 1 HOUR DO SELECT 1')).toBeNull();
    expect(definerOf('CREATE SQL SECURITY DEFINER VIEW v AS SELECT 1')).toBeNull();
  });

  it('writes an object statement as a replica runs it', () => {
    const at = (sql: string, definer?: string) => replicaObjectSql(sql, parse(sql), definer);
    expect(at('CREATE TRIGGER t AFTER INSERT ON x FOR EACH ROW SET @a = 1')).toContain('IF @tidemark_apply IS NULL');
    expect(at('CREATE EVENT e ON SCHEDULE EVERY 1 HOUR ENABLE DO SELECT 1')).toContain('DISABLE ON SLAVE DO');
    expect(at('ALTER EVENT e ENABLE', 'r@h')).toBe('ALTER DEFINER=`r`@`h` EVENT e DISABLE ON SLAVE');
    expect(at('ALTER EVENT e ON SCHEDULE EVERY 2 HOUR')).toBe('ALTER EVENT e ON SCHEDULE EVERY 2 HOUR');
    expect(at('CREATE VIEW v AS SELECT 1')).toBe('CREATE VIEW v AS SELECT 1');
    expect(dropIfExistsSql('function', { schema: 'a`b', name: 'f' })).toBe('DROP FUNCTION IF EXISTS `a``b`.`f`');
  });
});

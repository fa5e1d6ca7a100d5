/** Rewind and forward across object DDL: the plan that puts each touched object into its state at a point. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ins, ORDERS, type Part, TestJournal } from '../test/fixtures/rollback-journal.ts';
import type { Phase } from '../record/record.ts';
import { RollbackIndex } from './index/index.ts';
import type { ItemContext } from './items.ts';
import { objectForwardLimit, objectHistory, objectStatements, planObjectsAt, windowObjects } from './objects.ts';
import { objectWork, scriptSection } from './objects-run.ts';
import { checkWindow } from './points.ts';
import { writeScript } from './script.ts';
import { planUndo } from './undo.ts';

const ddl = (sql: string): Part => ({ ddl: sql, schema: 'shop', tables: [] });
const DEF = 'DEFINER=`root`@`localhost`';
const V1 = `CREATE ALGORITHM=UNDEFINED ${DEF} SQL SECURITY DEFINER VIEW \`v1\` AS select 1 AS \`a\``;
const P = `CREATE ${DEF} PROCEDURE \`p\`() BEGIN SELECT 1; END`;
const E = `CREATE ${DEF} EVENT \`e\` ON SCHEDULE EVERY 1 HOUR ON COMPLETION NOT PRESERVE ENABLE DO DELETE FROM t`;

let dir: string;
let index: RollbackIndex | undefined;

afterEach(async () => {
  index?.close();
  index = undefined;
  await rm(dir, { recursive: true, force: true });
});

/** Writes transactions (each: its parts, optionally a phase), indexes them; returns each one's commit seq. */
async function journal(txs: { parts: Part[]; phase?: Phase }[]): Promise<bigint[]> {
  dir = await mkdtemp(join(tmpdir(), 'tidemark-objects-'));
  const j = await TestJournal.open(dir);
  const commits: bigint[] = [];
  for (const t of txs) commits.push((await j.tx(t.parts, t.phase ? { phase: t.phase } : {})).seq);
  await j.close();
  index = await RollbackIndex.open({ journalDir: dir });
  await index.catchUp();
  return commits;
}

const ctx = (): ItemContext => ({
  index: index!,
  journalDir: dir,
  flavor: 'mariadb',
  skipColumns: async () => new Set(),
});

/** The usual history: a baseline with v1, p, e; rows; then a window of object DDL and rows. */
async function usual(): Promise<bigint[]> {
  return journal([
    { parts: [ddl('DROP VIEW IF EXISTS `shop`.`v1`'), ddl(V1), ddl(P), ddl(E)], phase: 'baseline' }, // 0
    { parts: [ins(ORDERS, [1n, 'a'])] }, // 1
    { parts: [ddl(`CREATE OR REPLACE ${DEF} VIEW v1 AS SELECT 2 AS a`)] }, // 2
    { parts: [ddl('DROP PROCEDURE p')] }, // 3
    { parts: [ins(ORDERS, [2n, 'b'])] }, // 4
    { parts: [ddl(`CREATE ${DEF} TRIGGER tr AFTER INSERT ON orders FOR EACH ROW SET @x = 1`)] }, // 5
    { parts: [ddl('ALTER EVENT e ON SCHEDULE EVERY 2 HOUR')] }, // 6
    { parts: [ddl(`CREATE ${DEF} VIEW v2 AS SELECT * FROM v1`)] }, // 7
    { parts: [ins(ORDERS, [3n, 'c'])] }, // 8
  ]);
}

const sqlOf = (stmts: { sql: string }[]) => stmts.map((s) => s.sql);

describe('object statements in a rewind window', () => {
  it('do not stop a window; table DDL still does', async () => {
    const c = await journal([
      { parts: [ins(ORDERS, [1n, 'a'])] },
      { parts: [ddl('CREATE VIEW v AS SELECT * FROM orders')] },
      { parts: [ddl('ALTER TABLE orders ADD x INT')] },
      { parts: [ins(ORDERS, [2n, 'b'])] },
    ]);
    expect(checkWindow(index!, c[0]!, c[1]!).txs).toBe(1);
    expect(() => checkWindow(index!, c[0]!, c[3]!)).toThrow(/crosses a DDL statement: "ALTER TABLE orders ADD x INT"/);
  });

  it('rewind: every touched object back as the baseline defined it, on a replica as apply runs it', async () => {
    const c = await usual();
    const h = objectHistory(index!, c[8]!);
    expect(h.complete).toBe(true);
    const touched = windowObjects(h, c[1]!, c[8]!);
    expect(touched.map((k) => `${k.kind}:${k.name}`)).toEqual([
      'view:v1',
      'procedure:p',
      'trigger:tr',
      'event:e',
      'view:v2',
    ]);
    const plan = planObjectsAt(h, touched, c[1]!);
    const exact = new Map(plan.steps.flatMap((s) => (s.kind === 'replay' ? [[s.ddl.info.seq, s.ddl.info.sql]] : [])));
    expect(sqlOf(objectStatements(plan, exact, true))).toEqual([
      'DROP VIEW IF EXISTS `shop`.`v1`',
      'DROP PROCEDURE IF EXISTS `shop`.`p`',
      'DROP TRIGGER IF EXISTS `shop`.`tr`',
      'DROP EVENT IF EXISTS `shop`.`e`',
      'DROP VIEW IF EXISTS `shop`.`v2`',
      'SET SESSION sql_mode = @@GLOBAL.sql_mode',
      'USE `shop`',
      V1,
      'USE `shop`',
      P,
      'USE `shop`',
      E.replace('ENABLE', 'DISABLE ON SLAVE'),
      "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'",
    ]);
    // On the source: as the source ran them.
    expect(sqlOf(objectStatements(plan, exact, false))).toContain(E);
  });

  it('forward: the window replayed on top (trigger guarded, the ALTER EVENT keeping the CREATE’s definer)', async () => {
    const c = await usual();
    const h = objectHistory(index!, c[8]!);
    const plan = planObjectsAt(h, windowObjects(h, c[1]!, c[8]!), c[8]!);
    const exact = new Map(plan.steps.flatMap((s) => (s.kind === 'replay' ? [[s.ddl.info.seq, s.ddl.info.sql]] : [])));
    const run = sqlOf(objectStatements(plan, exact, true)).filter((s) => !s.startsWith('DROP') && !s.startsWith('USE'));
    expect(run.slice(1, -1)).toEqual([
      E.replace('ENABLE', 'DISABLE ON SLAVE'),
      `CREATE OR REPLACE ${DEF} VIEW v1 AS SELECT 2 AS a`,
      `CREATE ${DEF} TRIGGER tr AFTER INSERT ON orders FOR EACH ROW IF @tidemark_apply IS NULL THEN\nSET @x = 1\n;\nEND IF`,
      'ALTER DEFINER=`root`@`localhost` EVENT e ON SCHEDULE EVERY 2 HOUR',
      `CREATE ${DEF} VIEW v2 AS SELECT * FROM v1`,
    ]);
  });

  it('a CREATE … IF NOT EXISTS of an object that existed did nothing', async () => {
    const c = await journal([
      { parts: [ddl(P)], phase: 'baseline' },
      { parts: [ddl('CREATE PROCEDURE IF NOT EXISTS p() SELECT 2')] },
      { parts: [ddl('ALTER PROCEDURE p COMMENT "x"')] },
      { parts: [ddl('CREATE PROCEDURE IF NOT EXISTS q() SELECT 3')] },
    ]);
    const h = objectHistory(index!, c[3]!);
    const plan = planObjectsAt(h, windowObjects(h, c[0]!, c[3]!), c[3]!);
    const replayed = plan.steps.flatMap((s) => (s.kind === 'replay' ? [s.ddl.info.sql] : []));
    expect(replayed).toEqual([P, 'ALTER PROCEDURE p COMMENT "x"', 'CREATE PROCEDURE IF NOT EXISTS q() SELECT 3']);
  });

  it('an event renamed in the window: both names reset; the rename replayed forward', async () => {
    const c = await journal([{ parts: [ddl(E)], phase: 'baseline' }, { parts: [ddl('ALTER EVENT e RENAME TO f')] }]);
    const h = objectHistory(index!, c[1]!);
    const touched = windowObjects(h, c[0]!, c[1]!);
    const back = planObjectsAt(h, touched, c[0]!);
    expect(back.steps.map((s) => (s.kind === 'drop' ? `drop ${s.object.name}` : s.ddl.info.sql))).toEqual([
      'drop e',
      'drop f',
      E,
    ]);
    const fwd = planObjectsAt(h, touched, c[1]!);
    expect(fwd.steps.map((s) => (s.kind === 'drop' ? `drop ${s.object.name}` : s.ddl.info.sql))).toEqual([
      'drop e',
      'drop f',
      E,
      'ALTER EVENT e RENAME TO f',
    ]);
  });

  it('a re-created trigger brings its table’s other triggers along, so their firing order stays', async () => {
    const trig = (n: string) => ddl(`CREATE ${DEF} TRIGGER ${n} AFTER INSERT ON orders FOR EACH ROW SET @${n} = 1`);
    const c = await journal([
      { parts: [trig('t1'), trig('t2')], phase: 'baseline' },
      { parts: [ddl(`CREATE ${DEF} TRIGGER o AFTER INSERT ON other FOR EACH ROW SET @o = 1`)] },
      { parts: [ddl('DROP TRIGGER t1')] },
    ]);
    const h = objectHistory(index!, c[2]!);
    const plan = planObjectsAt(h, windowObjects(h, c[1]!, c[2]!), c[1]!);
    expect(plan.steps.map((s) => (s.kind === 'drop' ? `drop ${s.object.name}` : s.ddl.info.sql))).toEqual([
      'drop t1',
      'drop t2',
      `CREATE ${DEF} TRIGGER t1 AFTER INSERT ON orders FOR EACH ROW SET @t1 = 1`,
      `CREATE ${DEF} TRIGGER t2 AFTER INSERT ON orders FOR EACH ROW SET @t2 = 1`,
    ]);
  });

  it('the history is complete only while the baseline’s units are still there', async () => {
    await journal([{ parts: [], phase: 'baseline-end' }, { parts: [ddl('CREATE OR REPLACE VIEW v1 AS SELECT 3')] }]);
    expect(objectHistory(index!, 100n).complete).toBe(false);
  });

  it('refuses when retention removed the definition; a plain CREATE in the window needs none', async () => {
    const c = await journal([
      { parts: [ins(ORDERS, [1n, 'a'])] },
      { parts: [ddl('CREATE VIEW w AS SELECT 1')] },
      { parts: [ddl('CREATE OR REPLACE VIEW v1 AS SELECT 3')] },
    ]);
    const h = objectHistory(index!, c[2]!);
    expect(h.complete).toBe(false);
    const w = planObjectsAt(h, windowObjects(h, c[0]!, c[1]!), c[0]!);
    expect(w.steps).toEqual([{ kind: 'drop', object: { kind: 'view', schema: 'shop', name: 'w' } }]);
    expect(() => planObjectsAt(h, windowObjects(h, c[1]!, c[2]!), c[1]!)).toThrow(
      /cannot put view `shop`.`v1` back as it was at seq \d+: the journal no longer holds its definition/,
    );
  });

  it('reads the exact statement from the journal; output and script comments are redacted', async () => {
    const secret = "CREATE PROCEDURE mk() CREATE USER 'u'@'%' IDENTIFIED BY 'pw-Not-Shown'";
    const c = await journal([
      { parts: [ins(ORDERS, [1n, 'a'])], phase: 'baseline' },
      { parts: [ddl(secret)] },
      { parts: [ddl('CREATE PROCEDURE q() SELECT "$$"')] },
    ]);
    const work = await objectWork(ctx(), c[0]!, c[2]!, c[0]!, c[2]!, true);
    expect(sqlOf([...work.toPoint])).toContain(secret);
    expect(work.lines.join('\n')).not.toContain('pw-Not-Shown');
    const section = scriptSection(work);
    expect(section).toContain('DELIMITER $$$\n');
    expect(section).toContain(`${secret}$$$\n`);
    expect(
      section
        .split('\n')
        .filter((l) => l.startsWith('--'))
        .join('\n'),
    ).not.toContain('pw-Not-Shown');
    const file = join(dir, 'plan.sql');
    await writeScript(file, (async function* () {})(), ['h'], { after: section });
    const script = await readFile(file, 'utf8');
    expect(script).toMatch(/SET @tidemark_apply = 1;\nSTART TRANSACTION;/);
    expect(script.indexOf(`COMMIT;\n${section}-- end of script`)).toBeGreaterThan(0);
    // Back to what the server holds (c[0]): both dropped.
    expect(sqlOf([...work.back])).toEqual([
      'DROP PROCEDURE IF EXISTS `shop`.`mk`',
      'DROP PROCEDURE IF EXISTS `shop`.`q`',
    ]);
  });
});

describe('forward across object statements the journal cannot plan', () => {
  it('--to-head stops before the first of them (apply runs them); any other forward is refused', async () => {
    const c = await journal([
      { parts: [ins(ORDERS, [1n, 'a'])] },
      { parts: [ins(ORDERS, [2n, 'b'])] },
      { parts: [ddl('ALTER EVENT e ON SCHEDULE EVERY 2 HOUR')] },
      { parts: [ins(ORDERS, [3n, 'c'])] },
    ]);
    const lim = objectForwardLimit(index!, c[0]!, c[3]!, true);
    expect(lim.end).toBe(c[1]);
    expect(lim.note).toMatch(/forward stops before transaction .* cannot put event `shop`.`e` back/);
    expect(() => objectForwardLimit(index!, c[0]!, c[3]!, false)).toThrow(/cannot put event `shop`.`e` back/);
    expect(objectForwardLimit(index!, c[0]!, c[1]!, false)).toEqual({ end: c[1], note: null });
  });
});

describe('undo with later object statements', () => {
  it('a later view or trigger on a changed table does not refuse; later table DDL does', async () => {
    const c = await journal([
      { parts: [ins(ORDERS, [1n, 'a'])] },
      { parts: [ins(ORDERS, [2n, 'b'])] },
      { parts: [ddl(`CREATE ${DEF} TRIGGER orders_ai AFTER INSERT ON orders FOR EACH ROW SET @x = 1`)] },
      { parts: [ddl('CREATE VIEW orders_v AS SELECT * FROM orders')] },
      { parts: [ddl('ALTER TABLE orders ADD x INT')] },
    ]);
    const root = index!.txByCommitSeq(c[1]!)!;
    const plan = await planUndo(ctx(), root, c[3]!, 'nocascade');
    expect(plan.rows).toBe(1);
    await expect(planUndo(ctx(), root, c[4]!, 'nocascade')).rejects.toThrow(
      /a later DDL statement changed shop.orders: "ALTER TABLE/,
    );
  });
});

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RowsEntry } from '../record/record.ts';
import { guardedStatements, type PlanItem } from './guard.ts';
import { BlockWriter, clip, guardedLine, writeScript } from './script.ts';

const dir = mkdtempSync(join(tmpdir(), 'tidemark-script-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function* items(list: PlanItem[]): AsyncGenerator<PlanItem> {
  yield* list;
}

const upd = (over: object = {}): PlanItem => ({
  kind: 'stmt',
  stmt: {
    sql: 'UPDATE `s`.`t` SET `v` = 2 WHERE `id` = 1',
    expect: 1,
    what: 'undo update (id=1)',
    seq: 5n,
    kind: 'update',
    ...over,
  },
});

describe('script', () => {
  it('groups guarded statements into blocks, each with its row-count check', () => {
    const w = new BlockWriter();
    expect(w.add(upd()) + w.add(upd({ expect: 3, kind: 'insert', sql: 'INSERT x' })) + w.close()).toBe(
      "BEGIN NOT ATOMIC IF @@in_transaction = 0 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'tidemark: not inside the script\\'s transaction; stopping'; END IF;\n" +
        "UPDATE `s`.`t` SET `v` = 2 WHERE `id` = 1; IF ROW_COUNT() <> 1 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'undo update (id=1)'; END IF;\n" +
        "INSERT x; IF ROW_COUNT() <> 3 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'undo update (id=1)'; END IF;\n" +
        'SET @tidemark_done = @tidemark_done + 2; END$$\n',
    );
    expect(w.statements).toBe(2);
    expect(w.close()).toBe('');
    let text = '';
    for (let i = 0; i < 450; i++) text += w.add(upd());
    text += w.close();
    expect(text.match(/^BEGIN NOT ATOMIC/gm)).toHaveLength(3);
    expect(text.match(/@tidemark_done \+ (\d+)/g)).toEqual([
      '@tidemark_done + 200',
      '@tidemark_done + 200',
      '@tidemark_done + 50',
    ]);
  });

  it('a no-op update checks existence instead of ROW_COUNT()', () => {
    const s = guardedLine(upd({ noop: true, exists: 'SELECT 1 FROM `s`.`t` WHERE `id` = 1 FOR UPDATE' }));
    expect(s).toContain('; IF NOT EXISTS (SELECT 1 FROM `s`.`t` WHERE `id` = 1 FOR UPDATE) THEN SIGNAL');
    expect(s).not.toContain('ROW_COUNT');
    expect(() => guardedLine(upd({ noop: true }))).toThrow(/existence check/);
  });

  it('messages are quoted and clipped to 128 characters keeping both ends', () => {
    const what = `undo update of \`s\`.\`t\` (name='${'é'.repeat(200)}\\'') at seq 77 of tx 0-1-2`;
    const m = clip(what);
    expect(Array.from(m)).toHaveLength(128);
    expect(m.endsWith('at seq 77 of tx 0-1-2')).toBe(true);
    expect(m.startsWith('undo update of')).toBe(true);
    expect(clip('😀'.repeat(200))).toBe('😀'.repeat(63) + '...' + '😀'.repeat(62));
    const s = guardedLine(upd({ what }));
    expect(s).toContain(`MESSAGE_TEXT = '${m.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`);
  });

  it('tx comments stay on one line and hold no delimiter', () => {
    const tx: PlanItem = {
      kind: 'tx',
      txId: 'evil\n$$$DROP DATABASE x;\n',
      commitSeq: 42n,
      commitTimeUs: 1_700_000_000_123_456n,
      direction: 'undo',
      rows: 3,
    };
    expect(new BlockWriter().add(tx)).toBe(
      '-- tx evil\\x0a$ $ $DROP DATABASE x;\\x0a committed 2023-11-14T22:13:20.123456Z (1700000000123456) seq 42: undo, 3 rows\n',
    );
  });

  it('writes header, transaction, blocks, finals last, the count check and COMMIT', async () => {
    const path = join(dir, 'a.sql');
    const r = await writeScript(
      path,
      items([
        { kind: 'tx', txId: 'g1', commitSeq: 9n, commitTimeUs: 0n, direction: 'undo', rows: 1 },
        { kind: 'final', sql: 'UPDATE pos SET seq = 1', expect: 1, what: 'the new position' },
        upd(),
      ]),
      ['tidemark rewind of rep', 'second\nline'],
    );
    expect(r).toEqual({ statements: 2 });
    const text = readFileSync(path, 'utf8');
    const lines = text.split('\n');
    expect(lines.slice(0, 3)).toEqual(['-- tidemark rewind of rep', '-- second', '-- line']);
    expect(text).toContain("charset utf8mb4\nSET NAMES utf8mb4, time_zone = '+00:00', sql_mode = '");
    expect(text).toContain(
      'START TRANSACTION;\nDELIMITER $$\n-- tx g1 committed 1970-01-01T00:00:00.000000Z (0) seq 9',
    );
    expect(text.indexOf('UPDATE pos SET seq = 1')).toBeGreaterThan(text.indexOf('UPDATE `s`.`t`'));
    expect(text).toMatch(
      /IF NOT \(@tidemark_done <=> 2\) THEN ROLLBACK; SIGNAL .*END\$\$\nDELIMITER ;\nCOMMIT;\n-- end of script\n$/,
    );
  });

  it('runs of rows become the same multi-row statements as in executePlan, checked by ROW_COUNT()', async () => {
    const e: RowsEntry = {
      kind: 'rows',
      source: 'src',
      seq: 10n,
      txId: 'tx1',
      schema: 's',
      table: 't',
      op: 'update',
      columns: [
        { name: 'id', type: 'int' },
        { name: 'v', type: 'varchar' },
      ],
      pk: ['id'],
      rows: [1n, 2n, 3n].map((id) => ({ before: [id, 'a'], after: [id, 'b'] })),
    };
    async function* plan(): AsyncGenerator<PlanItem> {
      for (const stmt of guardedStatements(e, 'undo', { flavor: 'mariadb', txId: 'tx1' })) yield { kind: 'stmt', stmt };
    }
    const path = join(dir, 'm.sql');
    expect(await writeScript(path, plan(), [])).toEqual({ statements: 1 });
    const text = readFileSync(path, 'utf8');
    expect(text).toContain(
      "VALUES /* key: k0 = `id`; held: c0 = `v`; written: n0 = `v` */ (NULL,(SELECT `v` FROM `s`.`t` WHERE 0),NULL),\n(3,'b','a'),\n(2,'b','a'),\n(1,'b','a')\n)",
    );
    expect(text).toContain(
      "SET `s`.`t`.`v` = tidemark_v.n0; IF ROW_COUNT() <> 3 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'undo update of `s`.`t` (3 rows: id=3 ... id=1) at seq 10..12 of tx tx1'; END IF;\n",
    );
    expect(text).toMatch(/@tidemark_done \+ 1; END\$\$/);
    const rows = join(dir, 'r.sql');
    expect(await writeScript(rows, plan(), [], { batch: false })).toEqual({ statements: 3 });
    expect(readFileSync(rows, 'utf8')).not.toContain('tidemark_v');
  });

  it('leaves no file behind when the plan fails', async () => {
    const path = join(dir, 'b.sql');
    async function* bad(): AsyncGenerator<PlanItem> {
      yield upd();
      throw new Error('journal gone');
    }
    await expect(writeScript(path, bad(), [])).rejects.toThrow('journal gone');
    expect(() => readFileSync(path)).toThrow();
    expect(() => readFileSync(`${path}.tmp`)).toThrow();
  });
});

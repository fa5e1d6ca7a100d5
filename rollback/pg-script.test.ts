import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { PlanItem } from './guard.ts';
import { PgBlockWriter, pgGuardedLine, writePgScript } from './pg-script.ts';

const dir = mkdtempSync(join(tmpdir(), 'tidemark-pg-script-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const upd = (over: object = {}): PlanItem => ({
  kind: 'stmt',
  stmt: {
    sql: `UPDATE "s"."t" SET "v" = '2'::integer WHERE "id" = '1'::integer`,
    expect: 1,
    what: "undo update of s.t (id=1) at seq 5 of tx 9 it's 100%",
    seq: 5n,
    kind: 'update',
    ...over,
  },
});

const tx: PlanItem = { kind: 'tx', txId: '745', commitSeq: 9n, commitTimeUs: 0n, direction: 'undo', rows: 2 };

describe('psql script', () => {
  it('checks each statement by ROW_COUNT and names it (as a parameter: % and quotes stay text)', () => {
    expect(pgGuardedLine(upd())).toBe(
      `UPDATE "s"."t" SET "v" = '2'::integer WHERE "id" = '1'::integer; GET DIAGNOSTICS tidemark_n = ROW_COUNT; ` +
        `IF tidemark_n <> 1 THEN RAISE EXCEPTION 'tidemark guard failed: %: matched % row(s), expected 1; rolled back, ` +
        `nothing was changed', 'undo update of s.t (id=1) at seq 5 of tx 9 it''s 100%', tidemark_n; END IF;\n`,
    );
  });

  it('groups statements into DO blocks whose dollar tag no data can end; a tx comment goes between blocks', () => {
    const w = new PgBlockWriter();
    const text = w.add(upd()) + w.add(tx) + w.add(upd({ sql: "SELECT '$tidemark$', '$tidemark1$'" })) + w.close();
    const blocks = text.split('DO ').slice(1);
    expect(blocks).toHaveLength(2);
    expect(blocks[0]).toMatch(
      /^\$tidemark\$\n#variable_conflict use_column\nDECLARE tidemark_n bigint;\nBEGIN\nUPDATE/,
    );
    expect(blocks[0]).toMatch(/END \$tidemark\$;\n-- tx 745 committed .* seq 9: undo, 2 rows\n$/);
    expect(blocks[1]).toMatch(/^\$tidemark2\$\n/);
    expect(blocks[1]).toMatch(/END \$tidemark2\$;\n$/);
    expect(w.statements).toBe(2);
    let many = '';
    for (let i = 0; i < 450; i++) many += w.add(upd());
    many += w.close();
    expect(many.split('DO $tidemark$').length - 1).toBe(3); // 200 + 200 + 50
  });

  it('writes one transaction: settings, BEGIN, replica role, the blocks, the finals last, COMMIT', async () => {
    const file = join(dir, 'a.sql');
    const final: PlanItem = {
      kind: 'final',
      sql: 'UPDATE tidemark.applied SET seq = 1',
      expect: 1,
      what: 'the new position',
    };
    async function* plan(): AsyncGenerator<PlanItem> {
      yield final;
      yield tx;
      yield upd();
    }
    const r = await writePgScript(file, plan(), ['tidemark rewind of pgdst', 'line\ntwo']);
    expect(r.statements).toBe(2);
    const text = readFileSync(file, 'utf8');
    const lines = text.split('\n');
    expect(lines.slice(0, 3)).toEqual(['-- tidemark rewind of pgdst', '-- line', '-- two']);
    expect(lines).toContain('\\set ON_ERROR_STOP on');
    expect(lines).toContain("SET TimeZone = 'UTC';");
    const begin = lines.indexOf('BEGIN;');
    expect(lines[begin + 1]).toBe('SET LOCAL session_replication_role = replica;');
    expect(text.indexOf('UPDATE "s"."t"')).toBeGreaterThan(begin);
    expect(text.indexOf('-- final\n')).toBeGreaterThan(text.indexOf('UPDATE "s"."t"'));
    expect(text.indexOf('UPDATE tidemark.applied')).toBeGreaterThan(text.indexOf('-- final\n'));
    expect(text.endsWith('COMMIT;\n-- end of script\n')).toBe(true);
  });
});

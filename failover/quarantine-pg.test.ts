import { describe, expect, it } from 'vitest';
import type { DdlEntry, RowsEntry } from '../record/record.ts';
import { pgDdlText, pgQuarantineHead, pgRowsText } from './quarantine-pg.ts';

const columns = [
  { name: 'id', type: 'int4', columnType: 'integer' },
  { name: 'v', type: 'text', columnType: 'text' },
  { name: 'b', type: 'bytea', columnType: 'bytea' },
];

function rows(op: RowsEntry['op'], r: RowsEntry['rows']): RowsEntry {
  return {
    kind: 'rows',
    source: 'pg',
    seq: 10n,
    txId: '745:0/3000A28',
    schema: 'app',
    table: 't',
    columns,
    pk: ['id'],
    op,
    rows: r,
  };
}

describe('the quarantine file of a PostgreSQL old primary', () => {
  it('starts with psql settings: stop at the first error, the journal values read in UTC/ISO', () => {
    const h = pgQuarantineHead('/j', 42n, ['failback of pg']);
    expect(h).toMatch(/^-- failback of pg\n-- errant transactions of \/j after LSN 42\n/);
    expect(h).toContain('\\set ON_ERROR_STOP on\n');
    expect(h).toContain("SET TimeZone = 'UTC';\n");
    expect(h).toContain("SET bytea_output = 'hex';\n");
    expect(h).not.toMatch(/SET NAMES|sql_mode|`/);
  });

  it('writes each row change as PostgreSQL SQL after its images, typed by casts, identifiers quoted', () => {
    const ins = [...pgRowsText(rows('insert', [{ before: null, after: ['1', "it's", Uint8Array.of(0xff)] }]))];
    expect(ins).toEqual([
      '-- before: null after: {"id":"1","v":"it\'s","b":"0xff"}\n' +
        `INSERT INTO "app"."t" ("id", "v", "b") VALUES ('1'::integer, 'it''s'::text, '\\xff'::bytea);\n`,
    ]);
    const upd = [...pgRowsText(rows('update', [{ before: ['1', 'a', null], after: ['1', 'b', null] }]))];
    expect(upd[0]).toMatch(
      /\nUPDATE "app"\."t" SET .*"v" = 'b'::text.* WHERE "id" = '1'::integer AND .*"v" IS NOT DISTINCT FROM 'a'::text/,
    );
    const del = [
      ...pgRowsText(
        rows('delete', [
          { before: ['2', 'x', null], after: null },
          { before: ['3', 'y', null], after: null },
        ]),
      ),
    ];
    expect(del).toHaveLength(2);
    expect(del[1]).toMatch(/\nDELETE FROM "app"\."t" WHERE "id" = '3'::integer AND /);
  });

  it('says so instead of a statement when an image is missing', () => {
    const [t] = pgRowsText(rows('update', [{ before: null, after: ['1', 'b', null] }]));
    expect(t).toMatch(/-- update not expressible as SQL \(.*before image.*\): see the images above\n$/);
  });

  it('writes DDL after setting its schema', () => {
    const d: DdlEntry = {
      kind: 'ddl',
      source: 'pg',
      seq: 3n,
      txId: 'x',
      schema: 'app',
      tables: [],
      sql: 'ALTER TABLE t ADD c int -- c\n',
    };
    expect(pgDdlText(d)).toBe(
      '-- DDL at seq 3 in schema app\nSET search_path = "app";\nALTER TABLE t ADD c int -- c\n;\n',
    );
  });
});

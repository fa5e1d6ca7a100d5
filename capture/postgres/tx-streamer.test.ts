import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import { createTableFilter } from '../../mysql/table-filter.ts';
import type { RowImage, RowOp } from '../../record/record.ts';
import * as pgo from '../../test/fixtures/pgoutput-bytes.ts';
import { PgoutputDecoder } from './pgoutput.ts';
import type { PgColumn } from './pgoutput-messages.ts';
import type { PgTableRef, TableShape } from './relations.ts';
import type { AddedColumnFacts } from './shape-diff.ts';
import { originSkipper } from './capture.ts';
import { ROWS_PER_ENTRY, SWITCHOVER_MESSAGE_PREFIX, type TxOut, TxStreamer } from './tx-streamer.ts';

const A = 100; // app.a, captured
const B = 200; // app.b, captured
const X = 300; // app.x, in the publication, excluded by the filter
const cols = [
  { name: 'id', typeOid: 23, typeMod: -1, key: true },
  { name: 'v', typeOid: 25, typeMod: -1, key: true },
];
const tables: PgTableRef[] = [
  { schema: 'app', table: 'a', oid: A },
  { schema: 'app', table: 'b', oid: B },
];

/** Records what the streamer does, in order; `gate` holds commitTx open until released. */
function harness(o: { ddlMessages?: boolean; facts?: AddedColumnFacts[]; skipOrigin?: (o: string) => boolean } = {}) {
  const log: string[] = [];
  const rows: { table: string; op: RowOp; rows: readonly RowImage[]; txId: string }[] = [];
  let release: (() => void) | undefined;
  let hold = false;
  const out: TxOut = {
    async appendRows(shape, op, r, txId) {
      rows.push({ table: shape.table, op, rows: r, txId });
      log.push(`rows ${shape.table} ${op} ${r.length}`);
    },
    async commitTx(txId, lsn, n) {
      log.push(`commit ${txId} ${lsn} ${n}`);
      if (hold) await new Promise<void>((r) => (release = r));
      log.push('durable');
    },
    readTo(lsn) {
      log.push(`read ${lsn}`);
    },
    async appendDdl(d, txId) {
      log.push(`ddl ${txId} [${d.schema}] ${d.tables.map((t) => `${t.schema}.${t.table}`).join(',')}: ${d.sql}`);
    },
  };
  const describeShape = async (t: PgTableRef, c: readonly PgColumn[]): Promise<TableShape> => ({
    schema: t.schema,
    table: t.table,
    columns: c.map((x) => ({ name: x.name, type: x.typeOid === 23 ? 'int4' : 'text' })),
    pk: ['id'],
    bytea: c.map(() => false),
  });
  const s = new TxStreamer({
    out,
    describe: describeShape,
    tables,
    scope: { allTables: false, schemas: new Set(['app']) },
    addedColumns: async (_t, names) => (o.facts ?? []).filter((f) => names.includes(f.name)),
    ddlMessages: o.ddlMessages ?? true,
    filter: createTableFilter(['app.*'], ['app.x']),
    confirm: (lsn) => log.push(`confirm ${lsn}`),
    ...(o.skipOrigin ? { skipOrigin: o.skipOrigin } : {}),
  });
  const dec = new PgoutputDecoder();
  const feed = async (...bufs: Buffer[]) => {
    for (const b of bufs) await s.message(dec.decode(b), dec);
  };
  return { s, log, rows, feed, holdCommits: () => (hold = true), release: () => release?.() };
}

const rel = (oid: number, name: string, c = cols) => pgo.relation(oid, 'app', name, 'f', c);

async function refusal(p: Promise<unknown>): Promise<TidemarkError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TidemarkError);
  return err as TidemarkError;
}

describe('TxStreamer: pgoutput transactions as journal entries', () => {
  it('one rows entry per run of relation and operation, one commit, confirm only once the commit is durable', async () => {
    const h = harness();
    h.holdCommits();
    await h.feed(pgo.begin(0x50n, 0n, 7), rel(A, 'a'), rel(B, 'b'), rel(X, 'x'));
    await h.feed(pgo.insert(A, ['1', 'x']), pgo.insert(A, ['2', 'y']), pgo.insert(X, ['9', 'skipped']));
    await h.feed(pgo.update(A, { kind: 'O', cells: ['1', 'x'] }, ['1', 'z']), pgo.insert(B, ['3', null]));
    expect(h.s.inTransaction).toBe(true);
    const done = h.feed(pgo.commit(0x50n, 0x58n, 0n));
    await new Promise((r) => setTimeout(r, 10));
    expect(h.log.some((l) => l.startsWith('confirm'))).toBe(false); // not durable yet
    h.release();
    await done;
    expect(h.log).toEqual([
      'rows a insert 2',
      'rows a update 1',
      'rows b insert 1',
      `commit 7:0/50 ${0x58n} 4`,
      'durable',
      `confirm ${0x58n}`,
    ]);
    expect(h.rows[1]?.rows[0]).toEqual({ before: ['1', 'x'], after: ['1', 'z'] });
    expect(h.rows[2]?.rows[0]).toEqual({ before: null, after: ['3', null] });
    expect(h.s.inTransaction).toBe(false);
  });

  it('journals the switchover marker transaction with 0 rows; other messages and empty transactions only read', async () => {
    const h = harness();
    const msg = (prefix: string, transactional = true) => pgo.message(transactional, 0x100n, prefix, Buffer.from('x'));
    await h.feed(pgo.begin(0x90n, 0n, 11), msg('someone.else'), pgo.commit(0x90n, 0x98n, 0n));
    await h.feed(pgo.begin(0xa0n, 0n, 12), msg(SWITCHOVER_MESSAGE_PREFIX, false), pgo.commit(0xa0n, 0xa8n, 0n));
    await h.feed(pgo.begin(0xb0n, 0n, 13), msg(SWITCHOVER_MESSAGE_PREFIX), pgo.commit(0xb0n, 0xb8n, 0n));
    expect(h.log).toEqual([
      `read ${0x98n}`,
      `confirm ${0x98n}`,
      `read ${0xa8n}`,
      `confirm ${0xa8n}`,
      `commit 13:0/B0 ${0xb8n} 0`,
      'durable',
      `confirm ${0xb8n}`,
    ]);
  });

  it('skips a transaction of a skipped replication origin (rows, TRUNCATE, its shape changes), not the others', async () => {
    const h = harness({ skipOrigin: originSkipper(['tidemark_*']) });
    await h.feed(pgo.begin(0x70n, 0n, 9), pgo.origin(0x9999n, 'tidemark_pg-main/shop'), rel(A, 'a'));
    await h.feed(pgo.insert(A, ['1', 'mine']), pgo.truncate(0, [A]));
    // A column added by DDL tidemark applied here (no DDL message under session_replication_role = replica).
    await h.feed(
      rel(A, 'a', [...cols, { name: 'w', typeOid: 23, typeMod: -1, key: true }]),
      pgo.insert(A, ['2', 'x', '3']),
    );
    await h.feed(pgo.commit(0x70n, 0x78n, 0n));
    expect(h.log).toEqual([`read ${0x78n}`, `confirm ${0x78n}`]);
    expect(h.s.skippedByOrigin).toBe(1);
    // Another origin (native logical replication's pg_<oid>) and no origin are captured.
    await h.feed(pgo.begin(0x80n, 0n, 10), pgo.origin(0x1n, 'pg_16384'), pgo.insert(A, ['3', 'y', '4']));
    await h.feed(pgo.commit(0x80n, 0x88n, 0n), pgo.begin(0x90n, 0n, 11), pgo.insert(A, ['4', 'z', '5']));
    await h.feed(pgo.commit(0x90n, 0x98n, 0n));
    expect(h.log.slice(2)).toEqual([
      'rows a insert 1',
      `commit 10:0/80 ${0x88n} 1`,
      'durable',
      `confirm ${0x88n}`,
      'rows a insert 1',
      `commit 11:0/90 ${0x98n} 1`,
      'durable',
      `confirm ${0x98n}`,
    ]);
    expect(h.s.skippedByOrigin).toBe(1);
    expect(originSkipper([])('tidemark_x/y')).toBe(false);
  });

  it('a transaction with nothing captured: no commit entry, confirmed at once (the idle ack keeps moving)', async () => {
    const h = harness();
    await h.feed(rel(X, 'x'), pgo.begin(0x60n, 0n, 8), pgo.insert(X, ['1', 'a']), pgo.commit(0x60n, 0x68n, 0n));
    expect(h.log).toEqual([`read ${0x68n}`, `confirm ${0x68n}`]);
  });

  it(`splits a big transaction every ${ROWS_PER_ENTRY} rows`, async () => {
    const h = harness();
    await h.feed(rel(A, 'a'), pgo.begin(0x70n, 0n, 9));
    for (let i = 0; i < ROWS_PER_ENTRY + 5; i++) await h.feed(pgo.insert(A, [String(i), 'v']));
    await h.feed(pgo.commit(0x70n, 0x78n, 0n));
    expect(h.rows.map((r) => r.rows.length)).toEqual([ROWS_PER_ENTRY, 5]);
  });

  it('journals TRUNCATE of captured tables as a DDL entry in its transaction; ignores an excluded one', async () => {
    const h = harness();
    await h.feed(rel(A, 'a'), rel(B, 'b'), rel(X, 'x'), pgo.begin(0x80n, 0n, 10), pgo.truncate(0, [X]));
    await h.feed(pgo.insert(A, ['1', 'x']), pgo.truncate(2, [A, B]), pgo.commit(0x80n, 0x88n, 0n));
    expect(h.log).toEqual([
      'rows a insert 1',
      'ddl 10:0/80 [app] app.a,app.b: TRUNCATE TABLE "app"."a", "app"."b" RESTART IDENTITY',
      `commit 10:0/80 ${0x88n} 1`,
      'durable',
      `confirm ${0x88n}`,
    ]);
    const only = harness();
    await only.feed(rel(X, 'x'), pgo.begin(0x90n, 0n, 11), pgo.truncate(0, [X]), pgo.commit(0x90n, 0x98n, 0n));
    expect(only.log).toEqual([`read ${0x98n}`, `confirm ${0x98n}`]);
  });

  const ddlMessage = (m: object) => pgo.message(true, 0x100n, 'tidemark.ddl', Buffer.from(JSON.stringify(m)));
  const obj = (type: string, schema: string, name: string, oid: number, relid = oid) => ({
    type,
    schema,
    identity: `${schema}.${name}`,
    name,
    oid: String(oid),
    relid: String(relid),
  });

  it('journals event-trigger DDL of captured tables, takes their new shape, captures a created table', async () => {
    const h = harness();
    const w = { name: 'w', typeOid: 23, typeMod: -1, key: true };
    await h.feed(rel(A, 'a'), pgo.begin(0x100n, 0n, 12));
    const alter = 'ALTER TABLE app.a ADD COLUMN w int -- a comment; with a semicolon';
    await h.feed(
      ddlMessage({ tag: 'ALTER TABLE', sql: alter, schema: 'public', objects: [obj('table', 'app', 'a', A)] }),
    );
    await h.feed(rel(A, 'a', [...cols, w]), pgo.insert(A, ['1', 'x', '5'])); // the new shape: no refusal
    const create = 'CREATE TABLE app.n (id int PRIMARY KEY)';
    await h.feed(
      ddlMessage({
        tag: 'CREATE TABLE',
        sql: create,
        schema: 'app',
        objects: [obj('table', 'app', 'n', 500), obj('index', 'app', 'n_pkey', 501, 500)],
      }),
    );
    // Not about a captured table or schema: not journaled (another schema; a table the filter excludes).
    const otherType = { type: 'type', schema: 'other', identity: 'other.e', name: null, oid: null, relid: null };
    const other = { tag: 'CREATE TYPE', sql: 'CREATE TYPE other.e AS ENUM ()', schema: 'other', objects: [otherType] };
    await h.feed(ddlMessage(other));
    const onX = {
      tag: 'ALTER TABLE',
      sql: 'ALTER TABLE app.x ADD q int',
      schema: 'app',
      objects: [obj('table', 'app', 'x', X)],
    };
    await h.feed(ddlMessage(onX));
    // A dropped index (its table unknown): by its schema.
    const idx = { type: 'index', schema: 'app', identity: 'app.i', name: 'i', oid: '77', relid: null };
    await h.feed(ddlMessage({ tag: 'DROP INDEX', sql: 'DROP INDEX app.i', schema: 'app', objects: [idx] }));
    await h.feed(rel(500, 'n', [cols[0]!]), pgo.insert(500, ['7']), pgo.commit(0x100n, 0x108n, 0n));
    expect(h.log.slice(0, 6)).toEqual([
      `ddl 12:0/100 [public] app.a: ${alter}`,
      'rows a insert 1',
      `ddl 12:0/100 [app] app.n: ${create}`,
      'ddl 12:0/100 [app] : DROP INDEX app.i',
      'rows n insert 1',
      `commit 12:0/100 ${0x108n} 2`,
    ]);
    expect(h.rows[0]?.rows[0]?.after).toEqual(['1', 'x', '5']);
    // A DDL after which the server sends no Relation message (COMMENT): the table keeps its shape.
    const comment = "COMMENT ON TABLE app.a IS 'x'";
    await h.feed(pgo.begin(0x108n, 0n, 20));
    await h.feed(ddlMessage({ tag: 'COMMENT', sql: comment, schema: 'app', objects: [obj('table', 'app', 'a', A)] }));
    await h.feed(pgo.insert(A, ['2', 'y', '6']), pgo.commit(0x108n, 0x10an, 0n));
    expect(h.log.slice(-5, -2)).toEqual([
      `ddl 20:0/108 [app] app.a: ${comment}`,
      'rows a insert 1',
      `commit 20:0/108 ${0x10an} 1`,
    ]);
    // DROP TABLE: journaled, the table forgotten.
    await h.feed(pgo.begin(0x110n, 0n, 13));
    await h.feed(
      ddlMessage({
        tag: 'DROP TABLE',
        sql: 'DROP TABLE app.n',
        schema: 'app',
        objects: [obj('table', 'app', 'n', 500)],
      }),
    );
    await h.feed(pgo.commit(0x110n, 0x118n, 0n));
    expect(h.log.at(-4)).toBe('ddl 13:0/110 [app] app.n: DROP TABLE app.n');
  });

  it('refuses DDL whose text cannot be replayed, and a table that joined the publication after the baseline', async () => {
    const h = harness();
    await h.feed(rel(A, 'a'), pgo.begin(0x120n, 0n, 14));
    const two = 'ALTER TABLE app.a ADD w int; INSERT INTO app.a VALUES (1, 2)';
    const err = await refusal(
      h.feed(ddlMessage({ tag: 'ALTER TABLE', sql: two, schema: 'app', objects: [obj('table', 'app', 'a', A)] })),
    );
    expect(err.code).toBe('PG_UNSUPPORTED');
    expect(err.message).toContain('the query string holds 2 statements');
    expect(h.log).toEqual([]);
    const joined = await refusal(harness().feed(rel(400, 'late')));
    expect(joined.message).toContain('table app.late joined the publication after the baseline');
  });

  it('without DDL messages: synthesizes ADD/DROP COLUMN from Relation messages, refuses what is not exact', async () => {
    const w = { name: 'w', typeOid: 23, typeMod: -1, key: true };
    const facts: AddedColumnFacts[] = [
      { name: 'w', type: 'int4', notNull: true, missing: '{5}', default: '5', generated: false, identity: false },
    ];
    const h = harness({ ddlMessages: false, facts });
    await h.feed(rel(A, 'a'), pgo.begin(0x130n, 0n, 15), rel(A, 'a', [...cols, w]), pgo.insert(A, ['1', 'x', '5']));
    await h.feed(rel(A, 'a'), pgo.insert(A, ['2', 'y']), pgo.commit(0x130n, 0x138n, 0n));
    expect(h.log.slice(0, 5)).toEqual([
      `ddl 15:0/130 [app] app.a: ALTER TABLE "app"."a" ADD COLUMN "w" int4 DEFAULT ('{5}'::int4[])[1] NOT NULL`,
      'ddl 15:0/130 [app] app.a: ALTER TABLE "app"."a" ALTER COLUMN "w" SET DEFAULT 5',
      'rows a insert 1',
      'ddl 15:0/130 [app] app.a: ALTER TABLE "app"."a" DROP COLUMN "w"',
      'rows a insert 1',
    ]);
    const renamed = await refusal(
      h.feed(pgo.begin(0x140n, 0n, 16), rel(A, 'a', [cols[0]!, { ...cols[1]!, name: 'v2' }])),
    );
    expect(renamed.code).toBe('PG_DDL_UNTRACKED');
    expect(renamed.message).toContain('table app.a changed shape without a DDL message');
    expect(renamed.message).toContain('before only: v; after only: v2');
  });
});

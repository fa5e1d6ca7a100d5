import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import { createTableFilter } from '../../mysql/table-filter.ts';
import type { RowImage, RowOp } from '../../record/record.ts';
import * as pgo from '../../test/fixtures/pgoutput-bytes.ts';
import { type PgColumn, PgoutputDecoder } from './pgoutput.ts';
import type { PgTableRef, TableShape } from './relations.ts';
import { ROWS_PER_ENTRY, type TxOut, TxStreamer } from './tx-streamer.ts';

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
function harness() {
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
    filter: createTableFilter(['app.*'], ['app.x']),
    confirm: (lsn) => log.push(`confirm ${lsn}`),
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

  it('refuses TRUNCATE of a captured table (PG_UNSUPPORTED, nothing committed); ignores an excluded one', async () => {
    const h = harness();
    await h.feed(rel(A, 'a'), rel(X, 'x'), pgo.begin(0x80n, 0n, 10), pgo.truncate(0, [X]));
    const err = await refusal(h.feed(pgo.truncate(0, [A])));
    expect(err.code).toBe('PG_UNSUPPORTED');
    expect(err.message).toBe(
      'TRUNCATE of app.a (xid 10 (commit 0/80)) is not yet supported by PostgreSQL capture; capture stopped before it',
    );
    expect(h.log).toEqual([]);
  });

  it('refuses a changed table shape (DDL) and a table that joined the publication after the baseline', async () => {
    const h = harness();
    await h.feed(rel(A, 'a'));
    const changed = await refusal(h.feed(rel(A, 'a', [...cols, { name: 'w', typeOid: 25, typeMod: -1, key: true }])));
    expect(changed.code).toBe('PG_UNSUPPORTED');
    expect(changed.message).toContain("a change of table app.a's shape (DDL");
    const joined = await refusal(h.feed(rel(400, 'late')));
    expect(joined.message).toContain('table app.late joined the publication after the baseline');
  });
});

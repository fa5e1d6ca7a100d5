import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CommitEntry, DdlEntry, RowsEntry } from '../record/record.ts';
import { JournalSink } from '../journal/entries.ts';
import { removeDir, tempDir } from '../test/fixtures/journal-files.ts';
import { JournalWriter } from '../journal/writer.ts';
import { type ErrantTx, formatErrantSummary, type QuarantineSummary, rowsText, writeQuarantine } from './quarantine.ts';

let dir: string;
let out: string;
let writer: JournalWriter;
let sink: JournalSink;
let seq = 0n;
let unitNo = 0;

beforeEach(async () => {
  dir = await tempDir();
  out = await tempDir();
  writer = await JournalWriter.open({ dir, fsync: 'transaction', groupCommitMs: 5, segmentBytes: 256 * 1024 });
  sink = new JournalSink(writer);
  seq = 0n;
  unitNo = 0;
});
afterEach(async () => {
  await writer.close();
  await removeDir(dir);
  await removeDir(out);
});

const orders = [
  { name: 'id', type: 'bigint', unsigned: true },
  { name: 'note', type: 'varchar' },
];

function rowsEntry(txId: string, over: Partial<RowsEntry> & Pick<RowsEntry, 'op' | 'rows'>): RowsEntry {
  const e: RowsEntry = {
    kind: 'rows',
    source: 'src',
    seq,
    txId,
    schema: 'shop',
    table: 'orders',
    columns: orders,
    pk: ['id'],
    ...over,
  };
  seq += BigInt(e.rows.length);
  return e;
}

/** Appends one unit: its rows/ddl entries, then a commit (unless `open`). Returns the commit's LSN. */
async function unit(build: (txId: string) => (RowsEntry | DdlEntry)[], open = false): Promise<bigint> {
  const u = ++unitNo;
  const txId = `0-1-${u}`;
  let rows = 0n;
  for (const e of build(txId)) {
    if (e.kind === 'rows') rows += BigInt(e.rows.length);
    await sink.append(e);
  }
  if (open) {
    await writer.sync();
    return sink.lsn;
  }
  const c: CommitEntry = {
    kind: 'commit',
    source: 'src',
    seq: seq++,
    txId,
    position: { kind: 'mysql', binlog: { file: 'mysql-bin.000001', offset: BigInt(1000 + u) }, gtid: txId },
    commitTimeUs: 1_700_000_000_000_000n + BigInt(u) * 1_000_000n,
    captureTimeUs: 1_700_000_000_000_000n + BigInt(u) * 1_000_000n + 50n,
    rowCount: rows,
    phase: 'stream',
  };
  await sink.commit(c);
  return sink.lsn;
}

const insertOrder = (id: number, note: string) => (txId: string) => [
  rowsEntry(txId, { op: 'insert', rows: [{ before: null, after: [BigInt(id), note] }] }),
];

/** 3 units before B, 2 errant ones after: returns B. */
async function history(): Promise<bigint> {
  await unit(insertOrder(1, 'before-one'));
  await unit(insertOrder(2, 'before-two'));
  const b = await unit(insertOrder(3, 'before-three'));
  await unit((txId) => [
    rowsEntry(txId, {
      table: 'we`ird',
      columns: [
        { name: 'id', type: 'int' },
        { name: 'blob', type: 'varbinary' },
      ],
      op: 'insert',
      rows: [{ before: null, after: [7n, new Uint8Array([0xde, 0xad, 0x00, 0x27])] }],
    }),
    rowsEntry(txId, {
      op: 'update',
      rows: [{ before: [1n, 'before-one'], after: [1n, "it's\nnew"] }],
    }),
    rowsEntry(txId, {
      table: 'log',
      columns: [
        { name: 'msg', type: 'text' },
        { name: 'n', type: 'int' },
      ],
      pk: [],
      op: 'delete',
      rows: [{ before: ['gone', 5n], after: null }],
    }),
  ]);
  await unit((txId) => {
    const d: DdlEntry = {
      kind: 'ddl',
      source: 'src',
      seq: seq++,
      txId,
      schema: 'shop',
      tables: [{ schema: 'shop', table: 'orders' }],
      sql: 'ALTER TABLE orders ADD COLUMN x INT',
    };
    return [d];
  });
  return b;
}

describe('writeQuarantine', () => {
  it('saves the units after B as re-applicable SQL with their images, and sums them up', async () => {
    const b = await history();
    const file = join(out, 'errant.sql');
    const seen: ErrantTx[] = [];
    const s = await writeQuarantine({
      journalDir: dir,
      afterLsn: b,
      file,
      header: ['tidemark failback of site dc1', 'at 2026-01-01'],
      onTx: (t) => seen.push(t),
    });
    expect(b).toBe(6n);
    expect(s).toMatchObject({
      file,
      afterLsn: 6n,
      transactions: 2,
      rows: { insert: 1, update: 1, delete: 1 },
      ddl: 1,
      tables: ['shop.log', 'shop.orders', 'shop.we`ird'],
      incompleteTail: false,
    });
    expect(seen.map((t) => t.txId)).toEqual(['0-1-4', '0-1-5']);
    expect(s.first).toEqual({
      txId: '0-1-4',
      firstLsn: 7n,
      lastLsn: 10n,
      firstSeq: 6n,
      commitSeq: 9n,
      commitTimeUs: 1_700_000_004_000_000n,
      rows: { insert: 1, update: 1, delete: 1 },
      ddl: 0,
      tables: ['shop.log', 'shop.orders', 'shop.we`ird'],
    });
    expect(s.last).toMatchObject({ txId: '0-1-5', firstLsn: 11n, lastLsn: 12n, ddl: 1, tables: ['shop.orders'] });

    const text = await readFile(file, 'utf8');
    expect(s.bytes).toBe(Buffer.byteLength(text));
    const lines = text.split('\n');
    expect(lines.slice(0, 3)).toEqual([
      '-- tidemark failback of site dc1',
      '-- at 2026-01-01',
      `-- errant transactions of ${dir} after LSN 6`,
    ]);
    expect(text).toContain(
      "\nSET NAMES utf8mb4, time_zone = '+00:00', sql_mode = 'NO_AUTO_VALUE_ON_ZERO,STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION';\n",
    );
    // Nothing at or before B.
    expect(text).not.toMatch(/before-two|before-three|0-1-[123]\b/);
    expect(text).toContain(
      '-- transaction 0-1-4 committed 2023-11-14T22:13:24.000000Z (LSN 7..10, seq 6..9): 1 insert, 1 update, 1 delete\n' +
        '-- tables: shop.log, shop.orders, shop.we`ird\n' +
        'START TRANSACTION;\n' +
        '-- before: null after: {"id":7,"blob":"0xdead0027"}\n' +
        "INSERT INTO `shop`.`we``ird` (`id`,`blob`) VALUES (7,X'DEAD0027');\n" +
        '-- before: {"id":1,"note":"before-one"} after: {"id":1,"note":"it\'s\\nnew"}\n' +
        "UPDATE `shop`.`orders` SET `note` = 'it\\'s\\nnew' WHERE `id` = 1;\n" +
        '-- before: {"msg":"gone","n":5} after: null\n' +
        "DELETE FROM `shop`.`log` WHERE `msg` <=> 'gone' AND `n` <=> 5 LIMIT 1;\n" +
        'COMMIT;\n',
    );
    expect(text).toContain(
      '-- transaction 0-1-5 committed 2023-11-14T22:13:25.000000Z (LSN 11..12, seq 10..11): 0 insert, 0 update, 0 delete, 1 DDL\n' +
        '-- tables: shop.orders\n' +
        'START TRANSACTION;\n' +
        '-- DDL at seq 10 in schema shop\n' +
        'USE `shop`;\n' +
        'ALTER TABLE orders ADD COLUMN x INT;\n' +
        'COMMIT;\n',
    );
    expect(text.endsWith('-- end: 2 transactions\n')).toBe(true);
    // Every line is a comment, a statement, a client command or blank: no raw newline inside a comment.
    for (const l of lines)
      expect(l).toMatch(/^(-- |--$|START |COMMIT;|INSERT |UPDATE |DELETE |USE |ALTER |SET |charset |$)/);

    expect((await stat(file)).mode & 0o777).toBe(0o600);
    await expect(stat(`${file}.tmp`)).rejects.toMatchObject({ code: 'ENOENT' });

    // Reading each unit again (nothing buffered) writes the same file.
    const again = join(out, 'again.sql');
    await writeQuarantine({
      journalDir: dir,
      afterLsn: b,
      file: again,
      header: ['tidemark failback of site dc1', 'at 2026-01-01'],
      bufferBytes: 0,
    });
    expect(await readFile(again, 'utf8')).toBe(text);
  });

  it('notes an unfinished unit after the last commit without writing it as a transaction', async () => {
    const b = await history();
    await unit(
      (txId) => [rowsEntry(txId, { op: 'insert', rows: [{ before: null, after: [99n, 'never-committed'] }] })],
      true,
    );
    const file = join(out, 'tail.sql');
    const s = await writeQuarantine({ journalDir: dir, afterLsn: b, file, header: [] });
    expect(s.transactions).toBe(2);
    expect(s.incompleteTail).toBe(true);
    const text = await readFile(file, 'utf8');
    expect(text).not.toContain('never-committed');
    expect(text).toContain(
      '-- unfinished unit at LSN 13..13 (tx 0-1-6, 1 frames) after the last commit: never committed, not a transaction, not included\n',
    );
    expect(formatErrantSummary(s)).toContain(
      'frames after the last commit (a transaction that never committed) were not saved',
    );
  });

  it('writes a 50k-row transaction statement by statement, read a second time from the journal', async () => {
    await unit(insertOrder(1, 'base'));
    const b = sink.lsn;
    const n = 50_000;
    const per = 1000;
    await unit((txId) =>
      Array.from({ length: n / per }, (_, k) => {
        const op = k % 2 === 0 ? 'insert' : 'update';
        const rows = Array.from({ length: per }, (_, i) => {
          const id = BigInt(k * per + i);
          return op === 'insert'
            ? { before: null, after: [id, `row ${id}`] }
            : { before: [id, `row ${id}`], after: [id, `row ${id} changed`] };
        });
        return rowsEntry(txId, { op, rows });
      }),
    );
    const file = join(out, 'big.sql');
    const s = await writeQuarantine({ journalDir: dir, afterLsn: b, file, header: ['big'], bufferBytes: 64 * 1024 });
    expect(s).toMatchObject({ transactions: 1, rows: { insert: n / 2, update: n / 2, delete: 0 }, ddl: 0 });
    expect(s.first).toMatchObject({ firstLsn: b + 1n, lastLsn: b + 51n });
    const text = await readFile(file, 'utf8');
    const lines = text.split('\n');
    expect(lines.filter((l) => /^(INSERT|UPDATE) /.test(l))).toHaveLength(n);
    expect(lines.filter((l) => l.startsWith('-- before: '))).toHaveLength(n);
    expect(text).toContain("INSERT INTO `shop`.`orders` (`id`,`note`) VALUES (0,'row 0');\n");
    expect(text).toContain("UPDATE `shop`.`orders` SET `note` = 'row 49999 changed' WHERE `id` = 49999;\n");
    expect(text).not.toContain("'base'");
    expect(lines.filter((l) => l === 'START TRANSACTION;')).toHaveLength(1);
    expect(lines.filter((l) => l === 'COMMIT;')).toHaveLength(1);
  });

  it('refuses a B that does not end a unit or lies beyond the journal, leaving no file', async () => {
    const b = await history();
    const file = join(out, 'bad.sql');
    await expect(writeQuarantine({ journalDir: dir, afterLsn: b + 1n, file, header: [] })).rejects.toMatchObject({
      code: 'QUARANTINE_BOUNDARY',
      message: expect.stringContaining('LSN 7 does not end a unit'),
    });
    await expect(writeQuarantine({ journalDir: dir, afterLsn: 13n, file, header: [] })).rejects.toMatchObject({
      code: 'QUARANTINE_BOUNDARY',
      message: expect.stringContaining('the journal ends before it'),
    });
    await expect(writeQuarantine({ journalDir: dir, afterLsn: 20n, file, header: [] })).rejects.toMatchObject({
      code: 'JOURNAL_BEHIND',
    });
    const ctl = new AbortController();
    ctl.abort(new Error('stop'));
    await expect(
      writeQuarantine({ journalDir: dir, afterLsn: b, file, header: [], signal: ctl.signal }),
    ).rejects.toThrow('stop');
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(`${file}.tmp`)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('at B = the head there is nothing errant', async () => {
    const b = await history();
    const s = await writeQuarantine({ journalDir: dir, afterLsn: b + 6n, file: join(out, 'none.sql'), header: [] });
    expect(s).toMatchObject({ transactions: 0, first: null, last: null, tables: [], incompleteTail: false });
    expect(formatErrantSummary(s)).toEqual([
      'no errant transactions after LSN 12',
      `saved to ${join(out, 'none.sql')} (${s.bytes} bytes)`,
    ]);
  });
});

describe('quarantine text', () => {
  it('keeps rows SQL cannot express as their images, with a note', () => {
    const e: RowsEntry = {
      kind: 'rows',
      source: 'src',
      seq: 1n,
      txId: 't',
      schema: 's',
      table: 't',
      op: 'update',
      columns: [
        { name: 'id', type: 'int' },
        { name: 'f', type: 'double' },
      ],
      pk: ['id'],
      rows: [
        { before: [1n, 1.5], after: [1n, Number.NaN] },
        { before: null, after: [2n, 2] },
      ],
    };
    expect([...rowsText(e)]).toEqual([
      '-- before: {"id":1,"f":1.5} after: {"id":1,"f":"NaN"}\n' +
        '-- update not expressible as SQL (cannot store NaN in MySQL (no NaN/Infinity in FLOAT/DOUBLE)): see the images above\n',
      '-- before: null after: {"id":2,"f":2}\n-- update not expressible as SQL (before image is missing): see the images above\n',
    ]);
  });

  it('summarises for the terminal', () => {
    const tx = (txId: string, lsn: bigint): ErrantTx => ({
      txId,
      firstLsn: lsn,
      lastLsn: lsn + 2n,
      firstSeq: 1n,
      commitSeq: 3n,
      commitTimeUs: 1_700_000_000_000_000n,
      rows: { insert: 2, update: 0, delete: 1 },
      ddl: 0,
      tables: ['s.t'],
    });
    const s: QuarantineSummary = {
      file: '/var/lib/tidemark/errant.sql',
      afterLsn: 40n,
      transactions: 3,
      rows: { insert: 6, update: 0, delete: 3 },
      ddl: 1,
      tables: Array.from({ length: 22 }, (_, i) => `s.t${i}`),
      first: tx('0-1-41', 41n),
      last: tx('0-1-50', 50n),
      bytes: 1234,
      incompleteTail: false,
    };
    expect(formatErrantSummary(s)).toEqual([
      '3 errant transactions after LSN 40: 6 insert, 0 update, 3 delete, 1 DDL',
      `tables: ${s.tables.slice(0, 20).join(', ')} and 2 more`,
      'first: 0-1-41 committed 2023-11-14T22:13:20.000000Z (LSN 41..43): 2 insert, 0 update, 1 delete',
      'last:  0-1-50 committed 2023-11-14T22:13:20.000000Z (LSN 50..52): 2 insert, 0 update, 1 delete',
      'saved to /var/lib/tidemark/errant.sql (1234 bytes)',
    ]);
  });
});

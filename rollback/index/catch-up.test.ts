import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listSegments, segmentPath } from '../../journal/segments.ts';
import { keyText } from './key.ts';
import { del, dumpIndex, ins, LINES, ORDERS, TestJournal, upd } from '../../test/fixtures/rollback-journal.ts';
import { RollbackIndex } from './rollback-index.ts';
import { INDEX_FILE } from './schema.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tidemark-rbindex-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function capture() {
  const lines: { level: number; msg: string }[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s)) });
  return { log, warnings: () => lines.filter((l) => l.level === 40).map((l) => l.msg) };
}

const KEYS: [string, string, string][] = [];
for (let i = 0n; i < 40n; i++) KEYS.push(['shop', 'orders', keyText([i])]);
KEYS.push(['shop', 'lines', keyText([1n, 'a'])]);

/** `n` transactions over keys 0..39 of orders (inserts, then updates and deletes), some with two tables. */
async function workload(j: TestJournal, n: number, start = 0) {
  for (let i = start; i < start + n; i++) {
    const id = BigInt(i % 40);
    if (i < 40) await j.tx([ins(ORDERS, [id, `v${i}`], [id + 1000n, 'x'])]);
    else if (i % 7 === 0) await j.tx([del(ORDERS, [id, `v${i - 40}`]), ins(ORDERS, [id, `v${i}`])]);
    else if (i % 5 === 0)
      await j.tx([
        upd(ORDERS, [
          [id, `v${i - 40}`],
          [id, `v${i}`],
        ]),
        ins(LINES, [1n, 'a', BigInt(i)]),
      ]);
    else
      await j.tx([
        upd(ORDERS, [
          [id, `v${i - 40}`],
          [id, `v${i}`],
        ]),
      ]);
  }
}

async function build(opts: { batchChanges?: number } = {}): Promise<string> {
  const index = await RollbackIndex.open({ journalDir: dir, ...opts });
  await index.catchUp();
  const d = dumpIndex(index, KEYS);
  index.close();
  return d;
}

describe('rollback index catch-up', () => {
  it('drops the rows of an unfinished unit the journal writer truncated, then indexes what replaced it', async () => {
    let j = await TestJournal.open(dir);
    await workload(j, 10);
    await j.entries(
      [
        ins(ORDERS, [500n, 'p'], [501n, 'q']),
        upd(ORDERS, [
          [1n, 'v1'],
          [1n, 'gone'],
        ]),
      ],
      'cut',
    );
    await j.writer.flush();
    const index = await RollbackIndex.open({ journalDir: dir, batchChanges: 2 });
    await index.catchUp();
    expect(index.listTxs({})).toHaveLength(10);
    await j.close();
    j = await TestJournal.open(dir); // recovery truncates the unfinished unit; its seqs are used again
    await j.tx([ins(ORDERS, [600n, 'new'])], { txId: 'after' });
    await workload(j, 5, 10);
    await j.close();
    await index.catchUp();
    expect(index.txById('cut')).toBeNull();
    expect(index.keyVersions('shop', 'orders', keyText([500n]))).toEqual([]);
    expect(index.keyVersions('shop', 'orders', keyText([600n]))).toHaveLength(1);
    const incremental = dumpIndex(index, [...KEYS, ['shop', 'orders', keyText([500n])]]);
    index.close();
    await unlink(join(dir, INDEX_FILE));
    const fresh = await RollbackIndex.open({ journalDir: dir });
    await fresh.catchUp();
    expect(dumpIndex(fresh, [...KEYS, ['shop', 'orders', keyText([500n])]])).toBe(incremental);
    fresh.close();
  });

  it('rebuilds a file overwritten with garbage, or deleted, and answers identically', async () => {
    const j = await TestJournal.open(dir);
    await workload(j, 120);
    await j.close();
    const before = await build({ batchChanges: 7 });
    const path = join(dir, INDEX_FILE);
    const fh = await open(path, 'r+');
    await fh.write(Buffer.alloc(8192, 0x5a), 0, 8192, 0);
    await fh.close();
    const { log, warnings } = capture();
    const index = await RollbackIndex.open({ journalDir: dir, log });
    expect(warnings()).toEqual(['rollback index damaged or out of date: moved aside, rebuilding it from the journal']);
    expect(existsSync(`${path}.damaged`)).toBe(true);
    await index.catchUp();
    expect(dumpIndex(index, KEYS)).toBe(before);
    index.close();
    for (const f of await readdir(dir)) if (f.startsWith(INDEX_FILE)) await unlink(join(dir, f));
    expect(await build()).toBe(before);
  });

  it('finds damage inside the file with verify, and rebuilds a file of another version', async () => {
    const j = await TestJournal.open(dir);
    await workload(j, 300);
    await j.close();
    const before = await build();
    const path = join(dir, INDEX_FILE);
    const size = (await stat(path)).size;
    expect(size).toBeGreaterThan(8 * 4096);
    const fh = await open(path, 'r+');
    await fh.write(Buffer.alloc(size - 8192, 0xa5), 0, size - 8192, 4096);
    await fh.close();
    const { log, warnings } = capture();
    const index = await RollbackIndex.open({ journalDir: dir, log, verify: true });
    expect(warnings()).toHaveLength(1);
    await index.catchUp();
    expect(dumpIndex(index, KEYS)).toBe(before);
    index.close();
    const db = new DatabaseSync(path);
    db.exec("UPDATE meta SET v = '999' WHERE k = 'version'");
    db.close();
    const again = capture();
    const reopened = await RollbackIndex.open({ journalDir: dir, log: again.log });
    expect(again.warnings()).toHaveLength(1);
    expect(reopened.indexedLsn).toBe(0n);
    await reopened.catchUp();
    expect(dumpIndex(reopened, KEYS)).toBe(before);
    reopened.close();
  });

  it('rebuilds when the journal was replaced by another one, longer or shorter', async () => {
    let j = await TestJournal.open(dir);
    await workload(j, 50);
    await j.close();
    await build();
    for (const n of [80, 20]) {
      for (const f of await readdir(dir)) if (!f.startsWith(INDEX_FILE)) await rm(join(dir, f), { recursive: true });
      j = await TestJournal.open(dir);
      await j.tx([ins(LINES, [9n, 'z', 1n])]); // shifts every seq and LSN
      await workload(j, n);
      await j.close();
      const { log, warnings } = capture();
      const index = await RollbackIndex.open({ journalDir: dir, log });
      expect(warnings()).toHaveLength(1);
      await index.catchUp();
      const got = dumpIndex(index, KEYS);
      index.close();
      await rename(join(dir, INDEX_FILE), join(dir, 'old.sqlite'));
      for (const f of await readdir(dir)) if (f.startsWith(`${INDEX_FILE}-`)) await unlink(join(dir, f));
      expect(await build()).toBe(got);
    }
  });

  it('starts at the oldest retained frame, skips a transaction cut by retention, and prunes', async () => {
    const j = await TestJournal.open(dir, 1024);
    await workload(j, 200);
    await j.close();
    const full = await RollbackIndex.open({ journalDir: dir });
    await full.catchUp();
    const segs = await listSegments(dir);
    expect(segs.length).toBeGreaterThan(10);
    // Retention removes the segments before one that starts inside a transaction.
    const all = full.listTxs({});
    const straddled = (s: bigint) => all.find((t) => t.firstLsn < s && t.commitLsn >= s);
    const oldest = segs.slice(3).find((s) => straddled(s)) as bigint;
    expect(oldest).toBeDefined();
    for (const s of segs.filter((x) => x < oldest)) await unlink(segmentPath(dir, s));
    const kept = all.filter((t) => t.firstLsn >= oldest);
    const cut = straddled(oldest);

    // A fresh index over a copy of what is left of the journal.
    const copy = join(dir, 'copy');
    await mkdir(copy);
    for (const s of await listSegments(dir)) await copyFile(segmentPath(dir, s), segmentPath(copy, s));
    const fresh = await RollbackIndex.open({ journalDir: copy });
    await fresh.catchUp();
    expect(fresh.listTxs({})).toEqual(kept);
    expect(cut).toBeDefined();
    expect(fresh.txById(cut?.txId as string)).toBeNull();

    // The old index, still open: prune drops what the journal lost; then both answer the same.
    expect((await full.prune()).txs).toBeGreaterThan(0);
    expect(dumpIndex(full, KEYS).replace(/"indexedLsn":"\d+n"/, '')).toBe(
      dumpIndex(fresh, KEYS).replace(/"indexedLsn":"\d+n"/, ''),
    );
    full.close();
    fresh.close();
  });

  it('continues after frames retention removed before they were indexed', async () => {
    const j = await TestJournal.open(dir, 1024);
    await workload(j, 20);
    await j.writer.flush();
    const { log, warnings } = capture();
    const index = await RollbackIndex.open({ journalDir: dir, log });
    await index.catchUp();
    const first = await listSegments(dir);
    await workload(j, 150, 20);
    await j.close();
    const segs = await listSegments(dir);
    const drop = segs.filter((s) => s <= (first.at(-1) as bigint) + 40n);
    for (const s of drop.slice(0, -1)) await unlink(segmentPath(dir, s));
    const oldest = (await listSegments(dir))[0] as bigint;
    await index.catchUp();
    expect(warnings()).toContain('rollback index: retention removed frames before they were indexed');
    const txs = index.listTxs({});
    expect(txs.filter((t) => t.firstLsn < oldest && t.commitLsn >= oldest)).toEqual([]);
    expect(txs.at(-1)?.commitLsn).toBe(index.indexedLsn);
    index.close();
  });

  it('two processes catching up together index everything once', async () => {
    const j = await TestJournal.open(dir);
    await workload(j, 300);
    await j.close();
    const a = await RollbackIndex.open({ journalDir: dir, batchChanges: 5 });
    const b = await RollbackIndex.open({ journalDir: dir, batchChanges: 3 });
    const [la, lb] = await Promise.all([a.catchUp(), b.catchUp()]);
    expect(la).toBe(lb);
    const da = dumpIndex(a, KEYS);
    expect(dumpIndex(b, KEYS)).toBe(da);
    a.close();
    b.close();
    await rename(join(dir, INDEX_FILE), join(dir, 'x.sqlite'));
    for (const f of await readdir(dir)) if (f.startsWith(`${INDEX_FILE}-`)) await unlink(join(dir, f));
    expect(await build()).toBe(da);
  });

  it('reopens the file when another process moved it aside', async () => {
    const j = await TestJournal.open(dir);
    await workload(j, 30);
    const a = await RollbackIndex.open({ journalDir: dir });
    await a.catchUp();
    await rename(join(dir, INDEX_FILE), join(dir, 'aside.sqlite'));
    await workload(j, 10, 30);
    await j.close();
    await a.catchUp();
    expect(a.listTxs({})).toHaveLength(40);
    expect(existsSync(join(dir, INDEX_FILE))).toBe(true);
    a.close();
  });
});

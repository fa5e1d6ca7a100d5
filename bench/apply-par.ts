/**
 * Apply-only benchmark of parallel apply: the same hand-built journal (OLTP-like: 1-5 row transactions over four
 * tables, a share of them on a few hot rows) applied from memory by the serial applier and by the parallel
 * applier with 2 and 4 workers to a fresh replica, alternating, each run checked equal to the serial result by
 * checksums. No capture, no process start: the applier alone. MariaDB on port 3893.
 *   node bench/apply-par.ts [--tx N] [--hot FRACTION] [--group N] [--runs N]
 */
import { parseArgs } from 'node:util';
import { MysqlApplier } from '../apply/mysql/applier.ts';
import { ParallelApplier } from '../apply/mysql/parallel-applier.ts';
import type { Column } from '../record/record.ts';
import { JournalBuilder, type TableDef } from '../test/fixtures/apply-kit.ts';
import { schemaChecksums } from '../test/fixtures/checksums.ts';
import { admin, resetSchemas, startInstance, stopInstance } from '../test/fixtures/mariadb.ts';
import { prng } from '../test/fixtures/prng.ts';

const PORT = 3893;
const { values } = parseArgs({
  options: {
    tx: { type: 'string', default: '6000' },
    hot: { type: 'string', default: '0.1' },
    group: { type: 'string', default: '500' },
    runs: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
  },
});
const col = (name: string, type: string): Column => ({ name, type });
const tables: TableDef[] = ['a', 'b', 'c', 'd'].map((t) => ({
  schema: 'bench',
  table: t,
  pk: ['id'],
  columns: [col('id', 'int'), col('n', 'int'), col('note', 'varchar')],
}));

function journal(txCount: number, hot: number): JournalBuilder {
  const r = prng(7);
  const j = new JournalBuilder('bench');
  j.tx((t) => t.ddl('', 'CREATE DATABASE bench'));
  for (const tb of tables) {
    j.tx((t) => t.ddl('bench', `CREATE TABLE ${tb.table} (id INT PRIMARY KEY, n INT, note VARCHAR(64))`));
  }
  const state = tables.map(() => new Map<number, number>());
  let nextId = 1_000;
  for (let i = 0; i < txCount; i++) {
    j.tx((t) => {
      const rows = 1 + Math.floor(r() * 5);
      for (let k = 0; k < rows; k++) {
        const ti = Math.floor(r() * 4);
        const tb = tables[ti]!;
        const m = state[ti]!;
        if (r() < hot && m.has(ti)) {
          const n = m.get(ti)!;
          t.update(tb, [
            [
              [BigInt(ti), n, 'hot'],
              [BigInt(ti), n + 1, 'hot'],
            ],
          ]);
          m.set(ti, n + 1);
        } else if (!m.has(ti)) {
          t.insert(tb, [[BigInt(ti), 0, 'hot']]);
          m.set(ti, 0);
        } else {
          const id = nextId++;
          t.insert(tb, [[BigInt(id), id, `row ${id} of tx ${i}`]]);
        }
      }
    });
  }
  return j;
}

const log = (s: string) => process.stderr.write(`apply-par: ${s}\n`);
startInstance('benchpar', PORT, { fresh: true });
const root = await admin(PORT);
const j = journal(Number(values.tx), Number(values.hot));
const target = (workers: number) => ({
  name: 'rep',
  host: '127.0.0.1',
  port: PORT,
  user: 'tidemark_apply',
  password: 'apply-pw',
  batch: { max_transactions: Number(values.group), max_rows: 20_000, max_wait_ms: 5 },
  no_primary_key: 'full-row' as const,
  parallel: { workers, max_row_keys: 1_000_000 },
});
const out: Record<string, number[]> = {};
let reference: string | null = null;
try {
  for (let run = 0; run < Number(values.runs); run++) {
    for (const workers of [1, 2, 4]) {
      await resetSchemas(root);
      const a =
        workers === 1
          ? new MysqlApplier({ target: target(1), source: 'bench' })
          : new ParallelApplier({ target: target(workers), source: 'bench' });
      await a.open();
      const t0 = performance.now();
      await a.run(j.read(1n));
      const s = (performance.now() - t0) / 1000;
      await a.close();
      const sums = JSON.stringify(await schemaChecksums(root, 'bench'));
      if (reference === null) reference = sums;
      else if (sums !== reference) throw new Error(`workers ${workers}: replica differs from the serial result`);
      (out[`workers_${workers}_tx_per_s`] ??= []).push(Math.round(Number(values.tx) / s));
      log(`run ${run + 1} workers ${workers}: ${s.toFixed(2)} s, ${Math.round(Number(values.tx) / s)} tx/s`);
    }
  }
} finally {
  await root.end();
  stopInstance('benchpar');
}
console.log(
  JSON.stringify({ transactions: Number(values.tx), hot: Number(values.hot), group: Number(values.group), ...out }),
);

/**
 * The LOAD DATA statement the batcher (batcher.ts) is filling (pure; no I/O): its rows go straight into the
 * statement's local file (load-data.ts LoadFile) and their seqs are kept as runs [first, count], so no per-row
 * object stays alive until the statement is checked (keeping thousands of row objects alive cost more garbage
 * collection than building the file). take() hands the load out as a 'load' StatementBatch whose INSERT (run on a
 * mismatch, exec.ts) and keys are read back from the file only when asked for.
 */
import type { Value } from '../../record/record.ts';
import { tuple } from '../../mysql/sql.ts';
import type { Shape, StatementBatch } from './batch-shape.ts';
import { LoadFile } from './load-data.ts';

export class PendingLoad {
  readonly #file: LoadFile;
  #rows = 0;
  #runs: [bigint, number][] = [];

  /** `maxBytes`: upper bound on one statement's file (a single larger line goes alone). */
  constructor(maxBytes: number) {
    this.#file = new LoadFile(maxBytes);
  }

  /** Rows in the pending load. */
  get rows(): number {
    return this.#rows;
  }

  /** Would `line` fit the file (an empty file takes any line)? */
  fits(line: string): boolean {
    return this.#file.fits(line);
  }

  /** Adds one row, as its line of the file (LoadShape.line), with its seq. */
  add(line: string, seq: bigint): void {
    this.#file.add(line);
    const run = this.#runs.at(-1);
    if (run && run[0] + BigInt(run[1]) === seq) run[1]++;
    else this.#runs.push([seq, 1]);
    this.#rows++;
  }

  /** The pending load (shape `s`, a loadable insert) as a LOAD DATA batch; the load is empty afterwards. */
  take(s: Shape): StatementBatch {
    const runs = this.#runs;
    const seqs = (): bigint[] => runs.flatMap(([first, n]) => Array.from({ length: n }, (_, i) => first + BigInt(i)));
    const common = {
      schema: s.schema,
      table: s.table,
      op: s.op,
      rows: this.#rows,
      keyCols: s.keyCols,
      fullRow: !s.pkIdx,
      ...(s.fkChecksOff ? { fkChecksOff: true } : {}),
    };
    const data = this.#file.take();
    this.reset();
    let images: Value[][] | undefined;
    const rows = () => (images ??= s.load!.parse(data));
    let keys: (readonly Value[])[] | undefined;
    let seqList: bigint[] | undefined;
    return {
      ...common,
      kind: 'load',
      sql: s.load!.sql,
      data,
      insertSql: () =>
        s.head +
        rows()
          .map((r) => tuple(r, s.cols, s.writeIdx))
          .join(','),
      get seqs() {
        seqList ??= seqs();
        return seqList;
      },
      get keys() {
        keys ??= rows().map((r) => (s.pkIdx ? s.pkIdx.map((i) => r[i] ?? null) : r));
        return keys;
      },
    };
  }

  /** Forgets the pending rows. */
  reset(): void {
    this.#rows = 0;
    this.#runs = [];
    this.#file.reset();
  }
}

/**
 * The toy engine's source adapter (test only): captures a SQLite source database (db.ts) through the real seam.
 * Baseline: one read transaction copies every user table at the change log's head P (units of phase `baseline`,
 * then `baseline-end`, all at P). Stream: polls `_changes` after the resume position and hands each source
 * transaction to the sink as rows entries plus a commit at the id of its last change.
 * `dropChange` (the lossy variant) silently skips one change of one transaction: the contract test must catch it.
 */
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { TidemarkError } from '../../../core/errors.ts';
import type {
  CaptureOptions,
  CaptureStatus,
  SourceAdapter,
  SourceCapture,
  SourceSection,
} from '../../../engine/source.ts';
import { type SequencePosition, sequencePosition } from '../../../record/position.ts';
import type { CommitEntry, Phase, RowOp, RowsEntry } from '../../../record/record.ts';
import { seqSpan } from '../../../record/record.ts';
import { type Db, decodeImage, openDb, tableRows, tableShape, userTables } from './db.ts';

export interface ToySourceSection extends SourceSection {
  readonly file: string;
  readonly poll_ms: number;
}

export const toySourceSchema = (kind: string) =>
  z
    .object({
      kind: z.literal(kind),
      name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
      file: z.string().min(1),
      poll_ms: z.number().int().min(1).default(20),
    })
    .strict();

const CHUNK = 500;
const nowUs = () => BigInt(Date.now()) * 1000n;
const head = (db: Db) => BigInt(String(db.prepare('SELECT coalesce(max(id), 0) AS m FROM _changes').get()?.['m']));

class ToyCapture implements SourceCapture {
  readonly #o: CaptureOptions<ToySourceSection>;
  readonly #engine: string;
  readonly #drop: DropChange | null;
  #phase: CaptureStatus['phase'] = 'starting';
  #position: SequencePosition | null;
  #read: SequencePosition | null;
  #nextSeq: bigint;

  constructor(o: CaptureOptions<ToySourceSection>, engine: string, drop: DropChange | null) {
    this.#o = o;
    this.#engine = engine;
    this.#drop = drop;
    const p = o.resume?.position;
    this.#position = p?.kind === 'sequence' ? p : null;
    this.#read = this.#position;
    this.#nextSeq = o.resume ? o.resume.seq + 1n : 1n;
  }

  status(): CaptureStatus {
    const st = { phase: this.#phase, position: this.#position, readPosition: this.#read, nextSeq: this.#nextSeq };
    return { ...st, reconnects: 0, pauses: 0 };
  }

  async run(signal: AbortSignal): Promise<void> {
    const db = openDb(this.#o.source.file);
    try {
      const r = this.#o.resume;
      if (!r || r.phase === 'baseline' || this.#o.forceBaseline) await this.#baseline(db);
      this.#phase = 'streaming';
      while (!signal.aborted) {
        await this.#poll(db, signal);
        await new Promise((res) => setTimeout(res, this.#o.source.poll_ms));
      }
    } finally {
      this.#phase = 'stopped';
      db.close();
    }
  }

  async #commit(txId: string, at: bigint, phase: Phase, rowCount: bigint, commitTimeUs: bigint): Promise<void> {
    const position = sequencePosition(this.#engine, at);
    const c: CommitEntry = {
      kind: 'commit',
      source: this.#o.source.name,
      seq: this.#nextSeq++,
      txId,
      position,
      commitTimeUs,
      captureTimeUs: nowUs(),
      rowCount,
      phase,
    };
    await this.#o.sink.commit(c);
    this.#position = position;
    this.#read = position;
  }

  async #rows(e: Omit<RowsEntry, 'kind' | 'source' | 'seq'>): Promise<void> {
    const entry: RowsEntry = { kind: 'rows', source: this.#o.source.name, seq: this.#nextSeq, ...e };
    this.#nextSeq += seqSpan(entry);
    await this.#o.sink.append(entry);
  }

  async #baseline(db: Db): Promise<void> {
    this.#phase = 'baseline';
    db.exec('BEGIN');
    let at: bigint;
    const copies: { table: string; rows: ReturnType<typeof tableRows> }[] = [];
    try {
      at = head(db);
      for (const t of userTables(db)) copies.push({ table: t, rows: tableRows(db, t) });
    } finally {
      db.exec('COMMIT');
    }
    const t0 = nowUs();
    for (const { table, rows } of copies) {
      const { columns, pk } = tableShape(db, table);
      for (let i = 0; i < rows.length; i += CHUNK) {
        const chunk = rows.slice(i, i + CHUNK).map((after) => ({ before: null, after }));
        const txId = `baseline:${at}:${table}:${i}`;
        await this.#rows({ txId, schema: 'main', table, op: 'insert', columns, pk, rows: chunk });
        await this.#commit(txId, at, 'baseline', BigInt(chunk.length), t0);
      }
    }
    await this.#commit(`baseline:${at}`, at, 'baseline-end', 0n, t0);
  }

  async #poll(db: Db, signal: AbortSignal): Promise<void> {
    const after = this.#position?.value ?? 0n;
    const st = db.prepare('SELECT id, tx, tbl, op, before, after, at_us FROM _changes WHERE id > ? ORDER BY id');
    st.setReadBigInts(true);
    const changes = st.all(after);
    let i = 0;
    while (i < changes.length && !signal.aborted) {
      const tx = changes[i]?.['tx'];
      let rowCount = 0n;
      let last = 0n;
      let at = 0n;
      for (let nth = 0; i < changes.length && changes[i]?.['tx'] === tx; i++, nth++) {
        const c = changes[i] as Record<string, unknown>;
        last = c['id'] as bigint;
        at = c['at_us'] as bigint;
        if (this.#drop && tx === this.#drop.tx && nth === this.#drop.index) continue;
        const table = String(c['tbl']);
        const { columns, pk } = tableShape(db, table);
        const before = decodeImage(c['before'] as string | null, columns);
        const img = decodeImage(c['after'] as string | null, columns);
        const op = String(c['op']) as RowOp;
        await this.#rows({ txId: `tx:${tx}`, schema: 'main', table, op, columns, pk, rows: [{ before, after: img }] });
        rowCount++;
      }
      await this.#commit(`tx:${tx}`, last, 'stream', rowCount, at);
    }
  }
}

/** The change the lossy variant loses: the `index`-th (from 0) change of source transaction `tx`. */
export interface DropChange {
  readonly tx: bigint;
  readonly index: number;
}

/** A toy source engine registered as `kind` (positions of engine `kind`); `dropChange`: lose that change. */
export function toySource(kind: string, o: { dropChange?: DropChange } = {}): SourceAdapter<ToySourceSection> {
  return {
    kind,
    positionEngine: kind,
    configSchema: toySourceSchema(kind),
    async preflight(s) {
      if (!existsSync(s.file)) {
        throw new TidemarkError(`source: toy database ${s.file} does not exist`, { code: 'CONFIG', retriable: false });
      }
      openDb(s.file, { readOnly: true }).close();
    },
    capture: async (c) => new ToyCapture(c, kind, o.dropChange ?? null),
    async readPosition(s) {
      try {
        const db = openDb(s.file, { readOnly: true });
        try {
          return { position: sequencePosition(kind, head(db)) };
        } finally {
          db.close();
        }
      } catch (err) {
        return { position: null, error: (err as Error).message };
      }
    },
  };
}

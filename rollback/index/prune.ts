/**
 * Forgetting history the journal no longer holds. Retention deletes old segments; their transactions can no longer
 * be read back, rewound or undone, so the index drops them too (else it would grow without bound). A transaction
 * whose first frames are gone is dropped with them.
 */
import type { DatabaseSync } from 'node:sqlite';
import { GEN_SHIFT } from './schema.ts';

const GEN = BigInt(GEN_SHIFT);

export interface PruneResult {
  /** Last commit seq dropped (null: nothing to drop). */
  uptoSeq: bigint | null;
  txs: number;
}

/** Drops every transaction that has a frame below `oldestLsn` (the first LSN of the oldest retained segment). */
export function pruneBelow(db: DatabaseSync, oldestLsn: bigint): PruneResult {
  const cut = db
    .prepare('SELECT commit_seq, first_lsn, commit_lsn FROM txs WHERE commit_lsn >= ? ORDER BY commit_lsn LIMIT 1')
    .get(oldestLsn) as { commit_seq: bigint; first_lsn: bigint; commit_lsn: bigint } | undefined;
  let upto: { commit_seq: bigint; commit_lsn: bigint } | undefined;
  if (cut && cut.first_lsn < oldestLsn) upto = cut;
  else {
    upto = db
      .prepare('SELECT commit_seq, commit_lsn FROM txs WHERE commit_lsn < ? ORDER BY commit_lsn DESC LIMIT 1')
      .get(oldestLsn) as typeof upto;
  }
  if (!upto) return { uptoSeq: null, txs: 0 };
  const seq = upto.commit_seq;
  const g = seq >> GEN;
  db.exec('BEGIN IMMEDIATE');
  try {
    const txs = db.prepare('DELETE FROM txs WHERE commit_seq <= ?').run(seq).changes;
    db.prepare('DELETE FROM tx_tables WHERE commit_seq <= ?').run(seq);
    db.prepare('DELETE FROM entries WHERE lsn <= ?').run(upto.commit_lsn);
    db.prepare('DELETE FROM ddls WHERE seq <= ?').run(seq);
    db.prepare('DELETE FROM changes WHERE g < ?').run(g);
    db.prepare('DELETE FROM changes WHERE g = ? AND seq <= ?').run(g, seq);
    db.prepare('DELETE FROM gens WHERE g < ?').run(g);
    db.exec('COMMIT');
    return { uptoSeq: seq, txs: Number(txs) };
  } catch (err) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw err;
  }
}

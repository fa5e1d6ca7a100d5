/**
 * `tidemark log`: the rollback list — transactions in the journal with commit time, id, tables and row counts per
 * operation, oldest first. --json prints one JSON object per line (the list can be long).
 */
import { formatTimeUs } from '../../rollback/time.ts';
import { openIndex } from '../../rollback/server.ts';
import { txJson, txLine } from '../../rollback/show.ts';
import type { CommandContext } from './context.ts';

export interface LogOptions extends CommandContext {
  readonly sinceUs?: bigint | undefined;
  readonly untilUs?: bigint | undefined;
  readonly table?: string | undefined;
  readonly json: boolean;
  /** Show only the newest N (still printed oldest first). */
  readonly limit?: number | undefined;
  /** Include baseline chunks (hidden by default: one summary line instead). */
  readonly baseline?: boolean | undefined;
}

export async function logCommand(o: LogOptions): Promise<number> {
  const index = await openIndex(o.config, o.log, o.signal);
  try {
    const q = {
      ...(o.sinceUs !== undefined ? { sinceUs: o.sinceUs } : {}),
      ...(o.untilUs !== undefined ? { untilUs: o.untilUs } : {}),
      ...(o.table !== undefined ? { table: o.table } : {}),
    };
    const txs =
      o.limit !== undefined
        ? index.listTxs({ ...q, order: 'desc', limit: o.limit }).reverse()
        : index.iterateTxs({ ...q, order: 'asc' });
    let baselineChunks = 0;
    let shown = 0;
    for (const t of txs) {
      if (t.phase === 'baseline' && !o.baseline) {
        baselineChunks++;
        continue;
      }
      if (baselineChunks > 0 && !o.json) {
        o.stdout.write(`(${baselineChunks} baseline chunk(s) hidden; --baseline shows them)\n`);
        baselineChunks = 0;
      }
      o.stdout.write(o.json ? `${JSON.stringify(txJson(t))}\n` : `${txLine(t)}\n`);
      shown++;
    }
    if (!o.json && shown === 0) {
      const range = [o.sinceUs, o.untilUs].map((v) => (v === undefined ? '…' : formatTimeUs(v))).join(' to ');
      o.stdout.write(`no transactions (${range}${o.table ? `, table ${o.table}` : ''})\n`);
    }
    return 0;
  } finally {
    index.close();
  }
}

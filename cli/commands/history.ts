/**
 * `tidemark history`: every version of one row — transaction, time, operation, before and after — oldest first,
 * read from the journal through the rollback index (like Oracle's Flashback Version Query).
 */
import { TidemarkError } from '../../core/errors.ts';
import { loadRows } from '../../rollback/items.ts';
import { parseKeyArg } from '../../rollback/index/index.ts';
import { openIndex } from '../../rollback/server.ts';
import { rowObject } from '../../rollback/show.ts';
import { formatTimeUs } from '../../rollback/time.ts';
import type { CommandContext } from './context.ts';

export interface HistoryOptions extends CommandContext {
  /** "schema.table" */
  readonly table: string;
  /** "col=value[,col=value]" */
  readonly key: string;
  readonly json: boolean;
}

export async function historyCommand(o: HistoryOptions): Promise<number> {
  const index = await openIndex(o.config, o.log, o.signal);
  try {
    const dot = o.table.indexOf('.');
    const schema = o.table.slice(0, dot);
    const table = o.table.slice(dot + 1);
    const pk = index.primaryKey(schema, table);
    if (pk === null) throw new TidemarkError(`${o.table} does not appear in the journal`, { code: 'USAGE' });
    if (pk.length === 0)
      throw new TidemarkError(`${o.table} has no primary key: rows have no identity to follow`, { code: 'USAGE' });
    const keyText = parseKeyArg(o.key, pk);
    const journal = { journalDir: o.config.journal.dir };
    const versions = [];
    for (const v of index.keyVersions(schema, table, keyText)) {
      const e = await loadRows(journal, v);
      const row = e.rows[v.row];
      const tx = index.txByCommitSeq(v.commitSeq);
      if (!row || !tx)
        throw new TidemarkError(`rollback index points at a missing row (seq ${v.seq})`, { code: 'INDEX' });
      versions.push({
        seq: v.seq.toString(),
        tx_id: tx.txId,
        commit_time: formatTimeUs(tx.commitTimeUs),
        op: v.op,
        before: rowObject(e.columns, row.before),
        after: rowObject(e.columns, row.after),
      });
    }
    if (o.json) {
      o.stdout.write(`${JSON.stringify({ table: o.table, key: o.key, versions })}\n`);
      return 0;
    }
    if (versions.length === 0) {
      o.stdout.write(`no changes of ${o.table} ${o.key} in the journal\n`);
      return 0;
    }
    for (const v of versions) {
      o.stdout.write(`${v.commit_time}  seq ${v.seq}  ${v.tx_id}  ${v.op}\n`);
      if (v.before) o.stdout.write(`  before ${JSON.stringify(v.before)}\n`);
      if (v.after) o.stdout.write(`  after  ${JSON.stringify(v.after)}\n`);
    }
    return 0;
  } finally {
    index.close();
  }
}

/**
 * `tidemark undo`: undo one transaction (or some of its rows) while later changes stay, with the conflict mode
 * the DBA picks (rollback/undo.ts). On a target the target is held first and stays held afterwards (it now holds
 * a state the source never had; `tidemark forward --to-head` lets apply continue). On the source (--yes) the
 * undo is captured like any other change.
 */
import { TidemarkError } from '../../core/errors.ts';
import { checkTxCascades } from '../../rollback/cascade.ts';
import { parseKeyArg } from '../../rollback/index/index.ts';
import { describeTx } from '../../rollback/points.ts';
import { framed } from '../../rollback/run-plan.ts';
import { pickServer } from '../../rollback/server.ts';
import { RewindSession } from '../../rollback/session.ts';
import { sourceProbe } from './source.ts';
import { planUndo, type RowFilter, type UndoMode, undoAtOnce, undoesRow, undoItems } from '../../rollback/undo.ts';
import type { CommandContext } from './context.ts';

export interface UndoOptions extends CommandContext {
  readonly target: string;
  readonly txId: string;
  readonly table?: string | undefined;
  readonly key?: string | undefined;
  readonly mode: UndoMode;
  readonly dryRun: boolean;
  readonly sqlFile?: string | undefined;
  readonly yes: boolean;
}

export async function undoCommand(o: UndoOptions): Promise<number> {
  const { config, log } = o;
  if (o.key !== undefined && o.table === undefined) {
    throw new TidemarkError('--key needs --table (the key is looked up in that table)', { code: 'USAGE' });
  }
  // A dry run changes nothing: it needs no --yes on the source either.
  const server = pickServer(config, o.target, o.yes || o.dryRun, 'tidemark undo');
  const s = await RewindSession.open({ ...o, sourceProbe: sourceProbe(config) }, server);
  const { index } = s;
  try {
    const root = index.txById(o.txId);
    if (!root)
      throw new TidemarkError(`transaction ${o.txId} is not in the rollback index (see tidemark log)`, {
        code: 'USAGE',
      });
    let filter: RowFilter | undefined;
    if (o.table !== undefined) {
      const [schema, ...rest] = o.table.split('.');
      const table = rest.join('.');
      if (!root.tables.includes(o.table)) {
        throw new TidemarkError(
          `${describeTx(root)} did not change ${o.table} (it changed: ${root.tables.join(', ')})`,
          {
            code: 'USAGE',
          },
        );
      }
      let keyText: string | undefined;
      if (o.key !== undefined) {
        const pk = index.primaryKey(schema!, table);
        if (!pk || pk.length === 0)
          throw new TidemarkError(`${o.table} has no primary key: --key cannot name a row`, { code: 'USAGE' });
        keyText = parseKeyArg(o.key, pk);
      }
      filter = { table: o.table, ...(keyText !== undefined ? { keyText } : {}) };
    }
    const head = await s.begin(`undo in progress since ${s.now}`);
    const { ctx } = s;
    // The usual case — the whole transaction, nocascade, run now — reads the journal once (undoAtOnce: a conflict
    // found on the way is refused inside the undo's transaction, which is rolled back); the others plan first.
    const atOnce =
      o.mode === 'nocascade' && filter === undefined && !o.dryRun && o.sqlFile === undefined
        ? undoAtOnce(ctx, root, head)
        : null;
    const plan = atOnce ? atOnce.plan : await planUndo(ctx, root, head, o.mode, filter);
    // Children a foreign-key cascade removed or changed are not in the journal: refuse rather than half-undo.
    const fks = await s.db.fks();
    await checkTxCascades(ctx, fks, plan.txs, undoesRow(plan, filter), `${server.kind} ${server.name}`);
    const lines = [`undo ${describeTx(root)} on ${o.target} (--mode ${o.mode}): ${plan.rows} row(s) of it`];
    if (plan.txs.length > 1) {
      lines.push(
        `  cascade: first undoes ${plan.txs.length - 1} later transaction(s) that depend on it, newest first:`,
      );
      for (const t of plan.txs.slice(0, -1)) lines.push(`    ${describeTx(t)}`);
    }
    if (plan.skipped.length) {
      lines.push(`  skipped ${plan.skipped.length} row(s) changed later (left as they are):`);
      for (const k of plan.skipped)
        lines.push(`    ${k.table} key ${k.key} (seq ${k.seq}), changed later by ${k.by.join(', ')}`);
    }
    o.stdout.write(`${lines.join('\n')}\n`);
    if (plan.rows === 0 && plan.txs.length === 1) {
      o.stdout.write('nothing to undo: every row was changed later\n');
      return 0;
    }
    if (o.dryRun && o.sqlFile === undefined) {
      o.stdout.write('dry run: nothing changed\n');
      return 0;
    }
    const hold = `undid ${root.txId} (--mode ${o.mode}) by tidemark undo at ${s.now}; the target now differs from the source`;
    const first = s.lockItems(hold);
    const header = [`tidemark undo on ${o.target} (${server.endpoint.host}:${server.endpoint.port})`, ...lines];
    const body = atOnce ? atOnce.items : undoItems(ctx, plan, filter);
    const r = await s.db.runPlan(framed(first, body, []), {
      sqlFile: o.sqlFile,
      signal: o.signal,
      log,
      header,
    });
    s.keepHold();
    o.stdout.write(
      r.executed
        ? `done: ${r.rows - first.length} row change(s) undone in ${r.txs} transaction(s)${server.kind === 'target' ? `; ${o.target} stays held (tidemark forward --to-head resumes apply)` : ''}\n`
        : `wrote ${r.statements} statement(s) to ${o.sqlFile}\n`,
    );
    return 0;
  } finally {
    await s.close();
  }
}

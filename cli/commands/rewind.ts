/**
 * `tidemark rewind` and `tidemark forward`: move a target back to a point (undo newest first) or forward again
 * (redo from the journal), any number of times. See rollback/README.md.
 *
 * On a target: the target is held first (its applier pauses at the next group and stays paused), the point is
 * resolved against what it then stores, and the statements plus the new position run in one transaction whose
 * first statement re-checks that position. `forward --to-head` releases the hold. On the source itself (--yes):
 * the undo runs on the primary and is captured like any other change.
 */
import { lockForRewindSql, setHoldSql, setPointSql } from '../../apply/mysql/position-table.ts';
import { serverFlavor } from '../../apply/mysql/session.ts';
import { TidemarkError } from '../../record/errors.ts';
import type { PlanItem } from '../../rollback/guard.ts';
import type { RollbackIndex } from '../../rollback/index/index.ts';
import { forwardItems, type ItemContext, rewindItems } from '../../rollback/items.ts';
import {
  checkWindow,
  type ForwardSpec,
  pointState,
  type RewindSpec,
  resolveForward,
  resolveRewind,
  type WindowSummary,
} from '../../rollback/points.ts';
import { framed, runPlan } from '../../rollback/run-plan.ts';
import {
  checkSourceCaptured,
  connect,
  generatedColumns,
  holdTarget,
  openIndex,
  pickServer,
  readPosition,
} from '../../rollback/server.ts';
import { formatTimeUs } from '../../rollback/time.ts';
import { CursorStore, SegmentFiles } from '../../ship/journal/index.ts';
import type { CommandContext } from './context.ts';

export interface MoveOptions extends CommandContext {
  readonly target: string;
  readonly dryRun: boolean;
  readonly sqlFile?: string | undefined;
  readonly yes: boolean;
}

export interface RewindOptions extends MoveOptions {
  readonly spec: RewindSpec;
}

export interface ForwardOptions extends MoveOptions {
  readonly spec: ForwardSpec;
}

function seqTime(index: RollbackIndex, seq: bigint): string {
  const t = index.txContaining(seq);
  if (!t) return `seq ${seq}`;
  return t.commitSeq === seq
    ? `seq ${seq} (${t.txId}, committed ${formatTimeUs(t.commitTimeUs)})`
    : `seq ${seq} (inside ${t.txId}, committed ${formatTimeUs(t.commitTimeUs)})`;
}

function summaryLines(verb: string, w: WindowSummary): string[] {
  const r = w.rows;
  const lines = [`${verb} ${w.txs} transaction(s): ${r.insert} insert, ${r.update} update, ${r.delete} delete row(s)`];
  if (w.tables.length) lines.push(`  tables: ${w.tables.join(', ')}`);
  if (w.first && w.last) {
    lines.push(
      `  from ${w.first.txId} (${formatTimeUs(w.first.commitTimeUs)}) to ${w.last.txId} (${formatTimeUs(w.last.commitTimeUs)})`,
    );
  }
  return lines;
}

async function move(o: RewindOptions | ForwardOptions, direction: 'rewind' | 'forward'): Promise<number> {
  const { config, log } = o;
  const server = pickServer(config, o.target, o.yes, `tidemark ${direction}`);
  if (server.kind === 'source' && direction === 'forward') {
    throw new TidemarkError(
      'forward re-applies the journal to a target; the source is rewound by undo transactions that capture ' +
        'recorded: to take a rewind of the source back, undo those (tidemark log shows them)',
      { code: 'USAGE' },
    );
  }
  const source = config.source.name;
  if (server.kind === 'source') await checkSourceCaptured(config, log, o.signal);
  const index = await openIndex(config, log, o.signal);
  const conn = await connect(server);
  let restore: (() => Promise<void>) | null = null;
  const files = new SegmentFiles();
  try {
    const now = new Date().toISOString();
    let head: bigint;
    if (server.kind === 'target') {
      // A dry run changes nothing, not even the hold; otherwise hold first so that the point cannot move.
      if (!o.dryRun) {
        const h = await holdTarget(conn, source, `${direction} in progress since ${now}`);
        restore = h.restore;
        head = h.stored.state?.seq ?? -1n;
      } else {
        head = (await readPosition(conn, source)).state?.seq ?? -1n;
      }
      if (head < 0n) throw new TidemarkError(`target ${o.target} has nothing applied yet`, { code: 'REWIND_POINT' });
    } else {
      const last = index.listTxs({ order: 'desc', limit: 1 })[0];
      if (!last) throw new TidemarkError('the journal holds no transaction yet', { code: 'REWIND_POINT' });
      head = last.commitSeq;
    }
    const end =
      direction === 'rewind'
        ? resolveRewind(index, head, (o as RewindOptions).spec)
        : resolveForward(index, head, (o as ForwardOptions).spec);
    const [lo, hi] = direction === 'rewind' ? [end, head] : [head, end];
    if (lo >= hi) {
      const releases =
        direction === 'forward' && (o as ForwardOptions).spec.kind === 'head' && server.kind === 'target';
      if (releases && !o.dryRun && !pointState(index, head).partial) {
        await conn.query(setHoldSql(source, null));
        restore = null;
        o.stdout.write(
          `${o.target} already holds the journal head (${seqTime(index, head)}): hold released, apply resumes\n`,
        );
        return 0;
      }
      o.stdout.write(
        `nothing to do: ${o.target} holds ${seqTime(index, head)}, which is already the point asked for\n`,
      );
      await restore?.();
      return 0;
    }
    const window = checkWindow(index, lo, hi);
    const lines = [`${direction} ${o.target} from ${seqTime(index, head)} to ${seqTime(index, end)}`];
    lines.push(...summaryLines(direction === 'rewind' ? 'undo' : 'redo', window));
    o.stdout.write(`${lines.join('\n')}\n`);
    if (o.dryRun && o.sqlFile === undefined) {
      o.stdout.write('dry run: nothing changed\n');
      return 0;
    }
    const ctx: ItemContext = {
      index,
      journalDir: config.journal.dir,
      flavor: await serverFlavor(conn),
      skipColumns: generatedColumns(conn),
      files,
    };
    const body = direction === 'rewind' ? rewindItems(ctx, lo, hi) : forwardItems(ctx, lo, hi);
    const first: PlanItem[] = [];
    const last: PlanItem[] = [];
    let point = null as ReturnType<typeof pointState> | null;
    if (server.kind === 'target') {
      point = pointState(index, end);
      const release = direction === 'forward' && (o as ForwardOptions).spec.kind === 'head' && !point.partial;
      const hold = release
        ? null
        : `${direction === 'rewind' ? 'rewound' : 'forwarded'} to ${seqTime(index, end)} by tidemark ${direction} at ${now}`;
      const check = `the target still holds seq ${head} (no apply or rewind ran since it was planned)`;
      first.push({
        kind: 'stmt',
        stmt: {
          sql: lockForRewindSql(source, head, hold ?? 'releasing'),
          expect: 1,
          what: check,
          seq: head,
          kind: 'update',
        },
      });
      last.push({ kind: 'final', sql: setPointSql(source, point.state, hold), expect: 1, what: 'the new position' });
    }
    const header = [
      `tidemark ${direction} of ${o.target} (${server.endpoint.host}:${server.endpoint.port})`,
      ...lines,
      `written ${now}; run with: mariadb -h HOST -P PORT -u USER -p < FILE (it stops at the first failed guard and changes nothing)`,
    ];
    const r = await runPlan(conn, framed(first, body, last), { sqlFile: o.sqlFile, signal: o.signal, log, header });
    restore = null;
    if (!r.executed) {
      o.stdout.write(
        `wrote ${r.statements} statement(s) to ${o.sqlFile}${server.kind === 'target' && !o.dryRun ? `; ${o.target} stays held until the script ran (or tidemark forward --to-head)` : ''}\n`,
      );
      return 0;
    }
    if (server.kind === 'target' && point) {
      await new CursorStore(config.journal.dir).set(`apply:${o.target}`, point.state.lsn);
    }
    o.stdout.write(
      `done: ${r.rows - first.length} row change(s) in ${r.txs} transaction(s); ${o.target} now holds ${seqTime(index, end)}` +
        (server.kind === 'target'
          ? direction === 'forward' && (o as ForwardOptions).spec.kind === 'head'
            ? '; apply resumes'
            : '; apply stays paused (tidemark forward --to-head resumes it)'
          : '') +
        '\n',
    );
    return 0;
  } catch (err) {
    await restore?.().catch(() => {});
    throw err;
  } finally {
    index.close();
    await files.close();
    await conn.end().catch(() => conn.destroy());
  }
}

export function rewindCommand(o: RewindOptions): Promise<number> {
  return move(o, 'rewind');
}

export function forwardCommand(o: ForwardOptions): Promise<number> {
  return move(o, 'forward');
}

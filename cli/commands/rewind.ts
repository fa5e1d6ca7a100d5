/**
 * `tidemark rewind` and `tidemark forward`: move a target back to a point (undo newest first) or forward again
 * (redo from the journal), any number of times. See rollback/README.md.
 *
 * On a target: the target is held first (its applier pauses at the next group and stays paused), the point is
 * resolved against what it then stores, and the statements plus the new position run in one transaction whose
 * first statement re-checks that position. `forward --to-head` releases the hold. On the source itself (--yes):
 * the undo runs on the primary and is captured like any other change.
 */
import { TidemarkError } from '../../core/errors.ts';
import { checkWindowCascades, forwardLimit } from '../../rollback/cascade.ts';
import type { PlanItem } from '../../rollback/guard.ts';
import type { RollbackIndex } from '../../rollback/index/index.ts';
import { forwardItems, rewindItems } from '../../rollback/items.ts';
import {
  checkWindow,
  type ForwardSpec,
  pointState,
  type RewindSpec,
  resolveForward,
  resolveRewind,
  type WindowSummary,
} from '../../rollback/points.ts';
import { objectForwardLimit } from '../../rollback/objects.ts';
import { objectWork, scriptSection } from '../../rollback/objects-run.ts';
import { framed } from '../../rollback/run-plan.ts';
import { pickServer } from '../../rollback/server.ts';
import { RewindSession } from '../../rollback/session.ts';
import { sourceProbe } from './source.ts';
import { formatTimeUs } from '../../rollback/time.ts';
import { CursorStore } from '../../journal/index.ts';
import type { CommandContext } from './context.ts';

export interface MoveOptions extends CommandContext {
  readonly target: string;
  readonly dryRun: boolean;
  readonly sqlFile?: string | undefined;
  readonly yes: boolean;
  /** See rollback/session.ts SessionOptions. */
  readonly sourceCaptured?: boolean | undefined;
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
  // A dry run changes nothing: it needs no --yes on the source either.
  const server = pickServer(config, o.target, o.yes || o.dryRun, `tidemark ${direction}`, o.sourceCaptured === true);
  if (server.kind === 'source' && direction === 'forward') {
    throw new TidemarkError(
      'forward re-applies the journal to a target; the source is rewound by undo transactions that capture ' +
        'recorded: to take a rewind of the source back, undo those (tidemark log shows them)',
      { code: 'USAGE' },
    );
  }
  const s = await RewindSession.open({ ...o, sourceProbe: sourceProbe(config) }, server);
  const { index } = s;
  try {
    const head = await s.begin(`${direction} in progress since ${s.now}`);
    if (head < 0n) {
      throw new TidemarkError(
        server.kind === 'target'
          ? `target ${o.target} has nothing applied yet`
          : 'the journal holds no transaction yet',
        { code: 'REWIND_POINT' },
      );
    }
    const toHead = direction === 'forward' && (o as ForwardOptions).spec.kind === 'head';
    let end =
      direction === 'rewind'
        ? resolveRewind(index, head, (o as RewindOptions).spec)
        : resolveForward(index, head, (o as ForwardOptions).spec);
    let stopped = false;
    if (direction === 'forward' && end > head) {
      // Redo does not cascade: stop before a change that cascaded (apply replays it), or refuse.
      const fks = await s.db.fks();
      const lim = await forwardLimit(s.ctx, fks, head, end, toHead, `${server.kind} ${server.name}`);
      end = lim.end;
      stopped = lim.note !== null;
      if (lim.note) o.stdout.write(`${lim.note}\n`);
    }
    if (direction === 'forward' && end > head) {
      // Object statements whose objects' earlier definitions retention removed: apply runs them (--to-head).
      const lim = objectForwardLimit(index, head, end, toHead);
      end = lim.end;
      if (lim.note) {
        stopped = true;
        o.stdout.write(`${lim.note}\n`);
      }
    }
    const [lo, hi] = direction === 'rewind' ? [end, head] : [head, end];
    if (lo >= hi) {
      if (toHead && server.kind === 'target' && !o.dryRun && !pointState(index, head).partial) {
        await s.release();
        o.stdout.write(
          `${o.target} ${stopped ? 'holds' : 'already holds the journal head'} (${seqTime(index, head)}): hold released, apply resumes\n`,
        );
        return 0;
      }
      o.stdout.write(
        `nothing to do: ${o.target} holds ${seqTime(index, head)}, which is already the point asked for\n`,
      );
      return 0;
    }
    const window = checkWindow(index, lo, hi);
    if (direction === 'rewind') {
      // Children a foreign-key cascade removed or changed are not in the journal: refuse rather than half-rewind.
      const fks = await s.db.fks();
      await checkWindowCascades(s.ctx, fks, lo, hi, `${server.kind} ${server.name}`);
    }
    // Views, routines, triggers and events the window created, altered or dropped: put into their state at the point.
    const objects = await objectWork(s.ctx, lo, hi, head, end, server.kind === 'target');
    const lines = [`${direction} ${o.target} from ${seqTime(index, head)} to ${seqTime(index, end)}`];
    lines.push(...summaryLines(direction === 'rewind' ? 'undo' : 'redo', window), ...objects.lines);
    o.stdout.write(`${lines.join('\n')}\n`);
    if (o.dryRun && o.sqlFile === undefined) {
      o.stdout.write('dry run: nothing changed\n');
      return 0;
    }
    const body = direction === 'rewind' ? rewindItems(s.ctx, lo, hi) : forwardItems(s.ctx, lo, hi);
    const point = pointState(index, end);
    const hold =
      toHead && !point.partial
        ? null
        : `${direction === 'rewind' ? 'rewound' : 'forwarded'} to ${seqTime(index, end)} by tidemark ${direction} at ${s.now}`;
    const first = s.lockItems(hold ?? 'releasing');
    const last: PlanItem[] =
      server.kind === 'target'
        ? [{ kind: 'final', sql: s.db.pointSql(s.source, point.state, hold), expect: 1, what: 'the new position' }]
        : [];
    const header = [
      `tidemark ${direction} of ${o.target} (${server.endpoint.host}:${server.endpoint.port})`,
      ...lines,
      `written ${s.now}; run with: ${s.db.scriptHint(objects.toPoint.length > 0)} (it stops at the first failed guard and changes nothing)`,
    ];
    const plan = framed(first, body, last);
    const out = { sqlFile: o.sqlFile, signal: o.signal, log, header, after: scriptSection(objects) };
    const r =
      o.sqlFile === undefined
        ? await s.db.withObjects(objects, log, () => s.db.runPlan(plan, out))
        : await s.db.runPlan(plan, out);
    s.keepHold();
    if (!r.executed) {
      o.stdout.write(
        `wrote ${r.statements} statement(s) to ${o.sqlFile}${server.kind === 'target' && !o.dryRun ? `; ${o.target} stays held until the script ran (or tidemark forward --to-head)` : ''}\n`,
      );
      return 0;
    }
    if (server.kind === 'target') {
      await new CursorStore(server.journalDir).set(`apply:${o.target}`, point.state.lsn);
    }
    o.stdout.write(
      `done: ${r.rows - first.length} row change(s) in ${r.txs} transaction(s)` +
        (objects.toPoint.length ? `, ${objects.lines.length - 1} object statement(s)` : '') +
        `; ${o.target} now holds ${seqTime(index, end)}` +
        (server.kind === 'target'
          ? toHead
            ? '; apply resumes'
            : '; apply stays paused (tidemark forward --to-head resumes it)'
          : '') +
        '\n',
    );
    return 0;
  } finally {
    await s.close();
  }
}

export function rewindCommand(o: RewindOptions): Promise<number> {
  return move(o, 'rewind');
}

export function forwardCommand(o: ForwardOptions): Promise<number> {
  return move(o, 'forward');
}

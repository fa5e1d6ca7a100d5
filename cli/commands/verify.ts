/**
 * `tidemark verify`: compares source and targets table by table with chunked checksums (each target's engine
 * adapter, engine/target.ts verify; MySQL: apply/mysql/verify.ts) and lists differing primary keys.
 *
 * The source keeps changing while tidemark runs, so first each target is given up to --wait-seconds to reach
 * the source's current position (or, when capture has read up to it, the journal's last commit; the text
 * says which targets were still behind when the wait ended, and after how long); differing chunks are then
 * re-checked a few times (a difference that disappears was replication lag, one that stays is real).
 */
import { existsSync } from 'node:fs';
import { sourceAdapter, targetAdapter } from '../../config/engines.ts';
import type { TableRef } from '../../engine/source.ts';
import type { VerifyResult } from '../../engine/target.ts';
import { TidemarkError } from '../../core/errors.ts';
import { comparePositions } from '../../record/position.ts';
import { lastCommit } from '../../journal/index.ts';
import { EXIT_DIFFERENT } from './exit.ts';
import { captureReach } from '../../node/capture-state.ts';
import type { CommandContext } from './context.ts';

export interface VerifyOptions extends CommandContext {
  /** Print one JSON document on stdout instead of a human report. */
  readonly json: boolean;
  /** "schema.table" names to compare (already checked for shape); undefined means every captured table. */
  readonly tables?: readonly string[] | undefined;
  /** How long to wait for the targets to reach the source's current position before comparing. */
  readonly waitSeconds: number;
  /** Compare only these targets (names checked by cli/main.ts); undefined means every target. */
  readonly targets?: readonly string[] | undefined;
}

const chosen = (o: VerifyOptions) => o.config.targets.filter((t) => !o.targets || o.targets.includes(t.name));

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The --tables list as table names; undefined: every table the source includes (the adapter lists them). */
function tablesAsked(o: VerifyOptions): TableRef[] | undefined {
  return o.tables?.map((t) => ({ schema: t.split('.')[0]!, table: t.split('.').slice(1).join('.') }));
}

interface WaitResult {
  /** Targets still behind when the wait ended. */
  readonly behind: string[];
  /** How long the wait took (ms). */
  readonly waitedMs: number;
}

/**
 * Waits until every target applied up to the source's position now (or the time is up). A target is there when
 * its stored position reached the source's, or when capture has caught up with the source (capture-state.ts:
 * the newest transactions may touch only tables outside the include set) and the target applied the journal's
 * last commit.
 */
async function waitForTargets(o: VerifyOptions): Promise<WaitResult> {
  const started = Date.now();
  const src = await sourceAdapter(o.config.source).readPosition(o.config.source);
  if (!src.position) throw new TidemarkError(`cannot read the source position: ${src.error}`, { code: 'CONNECT' });
  const deadline = started + o.waitSeconds * 1000;
  const behind = new Set(chosen(o).map((t) => t.name));
  const dir = o.config.journal.dir;
  for (;;) {
    let needSeq: bigint | null = null;
    if (existsSync(dir)) {
      const head = await lastCommit(dir);
      if ((await captureReach(dir, src.position, head)).caughtUp && head) needSeq = head.seq;
    }
    for (const t of chosen(o)) {
      if (!behind.has(t.name)) continue;
      const r = await targetAdapter(t).readStored(t, o.config.source.name);
      const st = r.stored?.state;
      const at = st?.position;
      // While a baseline is applied the stored position is already the snapshot's: not caught up until it ends.
      if (!st || st.phase === 'baseline') continue;
      if ((at && comparePositions(at, src.position) >= 0) || (needSeq !== null && st.seq >= needSeq)) {
        behind.delete(t.name);
      }
    }
    if (behind.size === 0 || Date.now() >= deadline) return { behind: [...behind], waitedMs: Date.now() - started };
    await sleep(200);
  }
}

/** Returns 0 when every compared table matches, EXIT_DIFFERENT (3, cli/commands/exit.ts) when some differ. */
export async function verifyCommand(o: VerifyOptions): Promise<number> {
  const tables = tablesAsked(o);
  const { behind, waitedMs } = await waitForTargets(o);
  const waited = `${(waitedMs / 1000).toFixed(1)} s`;
  if (behind.length) {
    o.log.warn({ targets: behind, waitedMs }, 'targets still behind the source position: comparing anyway');
  }
  const results: { target: string; result: VerifyResult }[] = [];
  for (const t of chosen(o)) {
    // Without --tables: every included table of either side, so one missing on a side is listed, never skipped.
    const result = await targetAdapter(t).verify({
      source: o.config.source,
      target: t,
      tables,
      log: o.log,
      signal: o.signal,
    });
    results.push({ target: t.name, result });
  }
  const equal = results.every((r) => r.result.equal);
  if (o.json) {
    o.stdout.write(
      `${JSON.stringify({ equal, behind, waited_seconds: waitedMs / 1000, targets: results.map((r) => ({ name: r.target, ...r.result })) }, (_k, v) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v))}\n`,
    );
  } else {
    for (const { target, result } of results) {
      o.stdout.write(`target ${target}: ${result.equal ? 'EQUAL' : 'DIFFERENT'} (${result.tables.length} tables)\n`);
      if (behind.includes(target)) {
        o.stdout.write(
          `  behind the source: still not caught up after waiting ${waited} (--wait-seconds ${o.waitSeconds}); ` +
            'compared anyway, so differences may be replication lag\n',
        );
      }
      for (const tr of result.tables) {
        const mark = tr.equal ? 'equal' : 'DIFFERENT';
        const extra = tr.columnsDiffer
          ? ` — ${tr.columnsDiffer}`
          : tr.noPrimaryKey
            ? ' (no primary key: compared whole)'
            : '';
        o.stdout.write(`  ${tr.schema}.${tr.table}: ${mark}, ${tr.rows} rows in ${tr.chunks} chunks${extra}\n`);
        for (const d of tr.differences) o.stdout.write(`      ${d.kind.padEnd(8)} ${d.key}\n`);
        if (tr.differenceCount > tr.differences.length) {
          o.stdout.write(`      … ${tr.differenceCount - tr.differences.length} more\n`);
        }
      }
      const objs = result.objects ?? [];
      if (objs.length > 0) {
        const bad = objs.filter((x) => !x.equal);
        o.stdout.write(`  schema objects: ${objs.length - bad.length} of ${objs.length} equal\n`);
        for (const x of bad) {
          const name = x.schema === '' ? x.name : `${x.schema}.${x.name}`;
          o.stdout.write(`    ${x.kind} ${name}: DIFFERENT — ${x.differs}\n`);
        }
      }
    }
  }
  return equal ? 0 : EXIT_DIFFERENT;
}

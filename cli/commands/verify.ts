/**
 * `tidemark verify`: compares source and targets table by table with chunked checksums (apply/mysql/verify.ts)
 * and lists differing primary keys.
 *
 * The source keeps changing while tidemark runs, so first each target is given up to --wait-seconds to reach
 * the source's current binlog position (or, when capture has read up to it, the journal's last commit; the text
 * says which targets were still behind when the wait ended, and after how long); differing chunks are then
 * re-checked a few times (a difference that disappears was replication lag, one that stays is real).
 */
import { existsSync } from 'node:fs';
import type mysql from 'mysql2/promise';
import { openSession } from '../../mysql/session.ts';
import { type VerifyResult, verifyTables } from '../../apply/mysql/verify.ts';
import { createTableFilter } from '../../capture/mysql/filter.ts';
import { TidemarkError } from '../../core/errors.ts';
import { compareBinlog } from '../../record/position.ts';
import { lastCommit } from '../../journal/index.ts';
import { EXIT_DIFFERENT } from './exit.ts';
import { captureReach } from '../../node/capture-state.ts';
import type { CommandContext } from './context.ts';
import { readSource } from '../../capture/mysql/read-source.ts';
import { readTarget } from '../../apply/mysql/read-target.ts';

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

async function capturedTables(o: VerifyOptions): Promise<{ schema: string; table: string }[]> {
  if (o.tables) return o.tables.map((t) => ({ schema: t.split('.')[0]!, table: t.split('.').slice(1).join('.') }));
  const filter = createTableFilter(o.config.source.include, o.config.source.exclude);
  const conn = await openSession(o.config.source, { apply: false });
  try {
    const [rows] = await conn.query<mysql.RowDataPacket[]>(
      "SELECT table_schema AS s, table_name AS t FROM information_schema.tables WHERE table_type IN ('BASE TABLE', 'SEQUENCE') ORDER BY 1, 2",
    );
    return rows
      .map((r) => ({ schema: String(r['s']), table: String(r['t']) }))
      .filter((t) => filter.includesTable(t.schema, t.table));
  } finally {
    await conn.end().catch(() => {});
  }
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
  const src = await readSource(o.config.source);
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
      const r = await readTarget(t, o.config.source.name);
      const st = r.stored?.state;
      const at = st?.position;
      // While a baseline is applied the stored position is already the snapshot's: not caught up until it ends.
      if (!st || st.phase === 'baseline') continue;
      if ((at && compareBinlog(at.binlog, src.position.binlog) >= 0) || (needSeq !== null && st.seq >= needSeq)) {
        behind.delete(t.name);
      }
    }
    if (behind.size === 0 || Date.now() >= deadline) return { behind: [...behind], waitedMs: Date.now() - started };
    await sleep(200);
  }
}

function includedTable(o: VerifyOptions): (schema: string, table: string) => boolean {
  const filter = createTableFilter(o.config.source.include, o.config.source.exclude);
  return (schema, table) => filter.includesTable(schema, table);
}

/** Returns 0 when every compared table matches, EXIT_DIFFERENT (3, cli/commands/exit.ts) when some differ. */
export async function verifyCommand(o: VerifyOptions): Promise<number> {
  const tables = await capturedTables(o);
  const { behind, waitedMs } = await waitForTargets(o);
  const waited = `${(waitedMs / 1000).toFixed(1)} s`;
  if (behind.length) {
    o.log.warn({ targets: behind, waitedMs }, 'targets still behind the source position: comparing anyway');
  }
  const results: { target: string; result: VerifyResult }[] = [];
  for (const t of chosen(o)) {
    const result = await verifyTables({
      source: o.config.source,
      replica: t,
      tables,
      // Without --tables: every included table of either side, so one missing on a side is listed, never skipped.
      ...(o.tables ? {} : { includes: includedTable(o) }),
      log: o.log,
      signal: o.signal,
      recheck: { attempts: 5, delay: (n) => sleep(500 * n) },
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
    }
  }
  return equal ? 0 : EXIT_DIFFERENT;
}

/**
 * Rollback index benchmark: `node bench/rewind-index.ts [--changes N] [--dir D] [--keep]`. Progress on stderr,
 * one JSON line on stdout.
 *
 *   1. writes a synthetic journal of N row changes (JournalWriter, fsync group): 4 tables with integer keys and a
 *      few typed columns; transactions of 1–4 rows entries of 1–50 rows; 40 % inserts of new keys, 50 % updates
 *      and 10 % deletes of random existing keys (so keys have several versions); commit times increase
 *   2. builds the rollback index from scratch (timed: index_build_rows_per_s)
 *   3. for 2,000 random keys: keyVersions, then readEntryAt of every version (history_p50_ms / history_p99_ms)
 * Steps 2 and 3 run in a child process with the Node flags and the SQLite page cache of `tidemark run`'s index
 * process (node/index-loop.ts INDEX_CHILD_FLAGS, node/index-follow.ts RUN_CACHE_MB), so peak_rss_mb (its VmHWM) is
 * what building and querying take there.
 * The directory is emptied first and removed afterwards (unless --keep).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import type { Column, CommitEntry, RowImage, RowOp, RowsEntry, Value } from '../record/record.ts';
import { RollbackIndex } from '../rollback/index/index.ts';
import { keyText } from '../rollback/index/key.ts';
import { JournalSink } from '../journal/entries.ts';
import { readEntryAt } from '../journal/read-at.ts';
import { JournalWriter } from '../journal/writer.ts';
import { RUN_CACHE_MB } from '../node/index-follow.ts';
import { INDEX_CHILD_FLAGS } from '../node/index-loop.ts';

export interface IndexBenchResult {
  index_build_rows_per_s: number;
  history_p99_ms: number;
  history_p50_ms: number;
  changes: number;
  index_bytes: number;
  peak_rss_mb: number;
}

const TABLES = ['orders', 'customers', 'items', 'payments'];
const COLUMNS: Column[] = [
  { name: 'id', type: 'bigint', unsigned: true },
  { name: 'name', type: 'varchar', columnType: 'varchar(64)' },
  { name: 'qty', type: 'int' },
  { name: 'amount', type: 'decimal', columnType: 'decimal(12,2)' },
  { name: 'updated_at', type: 'datetime' },
];
const LOOKUPS = 2000;

/** Deterministic pseudo-random numbers (xorshift32). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

function image(id: bigint, v: number): Value[] {
  return [id, `name-${id}-${v}`, BigInt(v % 1000), `${(v % 100000) / 100}`, '2024-05-01 12:00:00'];
}

async function writeJournal(dir: string, changes: number, log: (s: string) => void): Promise<bigint[]> {
  const w = await JournalWriter.open({ dir, fsync: 'group', groupCommitMs: 10, segmentBytes: 64 << 20 });
  const sink = new JournalSink(w);
  const rand = rng(42);
  const next = TABLES.map(() => 1n);
  let seq = 1n;
  let written = 0;
  let tx = 0;
  let time = 1_700_000_000_000_000n;
  const pending: Promise<void>[] = [];
  while (written < changes) {
    const txId = `0-1-${++tx}`;
    const entries = 1 + Math.floor(rand() * 4);
    let rowCount = 0n;
    for (let i = 0; i < entries && written < changes; i++) {
      const t = Math.floor(rand() * TABLES.length);
      const r = rand();
      const op: RowOp = r < 0.4 || (next[t] as bigint) < 100n ? 'insert' : r < 0.9 ? 'update' : 'delete';
      const n = Math.min(1 + Math.floor(rand() * 50), changes - written);
      const rows: RowImage[] = [];
      for (let k = 0; k < n; k++) {
        const v = written + k;
        if (op === 'insert') {
          rows.push({ before: null, after: image((next[t] as bigint)++, v) });
        } else {
          const id = BigInt(1 + Math.floor(rand() * Number((next[t] as bigint) - 1n)));
          rows.push(
            op === 'update' ? { before: image(id, v - 1), after: image(id, v) } : { before: image(id, v), after: null },
          );
        }
      }
      const e: RowsEntry = {
        kind: 'rows',
        source: 'bench',
        seq,
        txId,
        schema: 'shop',
        table: TABLES[t] as string,
        op,
        columns: COLUMNS,
        pk: ['id'],
        rows,
      };
      await sink.append(e);
      seq += BigInt(n);
      written += n;
      rowCount += BigInt(n);
    }
    time += BigInt(1 + Math.floor(rand() * 2000));
    const c: CommitEntry = {
      kind: 'commit',
      source: 'bench',
      seq,
      txId,
      position: { kind: 'mysql', binlog: { file: 'mysql-bin.000001', offset: seq * 200n } },
      commitTimeUs: time,
      captureTimeUs: time + 100n,
      rowCount,
      phase: 'stream',
    };
    seq++;
    pending.push(sink.commit(c));
    if (pending.length >= 2000) await Promise.all(pending.splice(0));
    if (tx % 50_000 === 0) log(`journal: ${written} changes`);
  }
  await Promise.all(pending);
  await w.close();
  return next;
}

async function dirBytes(dir: string, prefix: string): Promise<number> {
  let total = 0;
  for (const f of await readdir(dir)) if (f.startsWith(prefix)) total += (await stat(join(dir, f))).size;
  return total;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] as number;
}

/** Peak resident set size of this process (VmHWM), in MB; falls back to the current RSS. */
function peakRssMb(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m?.[1]) return Math.round(Number(m[1]) / 1024);
  } catch {
    // not Linux
  }
  return Math.round(process.memoryUsage().rss / 1e6);
}

interface PhaseResult {
  buildS: number;
  p50: number;
  p99: number;
  versions: number;
  peakRssMb: number;
}

/** Builds the index and runs the lookups; runs in a child process so that its peak RSS is its own. */
async function indexPhase(dir: string, next: bigint[], say: (s: string) => void): Promise<PhaseResult> {
  const t0 = performance.now();
  const index = await RollbackIndex.open({ journalDir: dir, cacheMb: RUN_CACHE_MB });
  await index.catchUp({ onProgress: (p) => say(`index: LSN ${p.lsn}/${p.head}, ${p.changes} changes`) });
  const buildS = (performance.now() - t0) / 1000;
  say('history lookups');
  const rand = rng(7);
  const times: number[] = [];
  let versions = 0;
  for (let i = 0; i < LOOKUPS; i++) {
    const t = Math.floor(rand() * TABLES.length);
    const id = BigInt(1 + Math.floor(rand() * Number((next[t] as bigint) - 1n)));
    const a = performance.now();
    const vs = index.keyVersions('shop', TABLES[t] as string, keyText([id]));
    for (const v of vs) await readEntryAt(dir, v.segment, v.offset, v.lsn);
    times.push(performance.now() - a);
    versions += vs.length;
  }
  times.sort((a, b) => a - b);
  index.close();
  return { buildS, p50: percentile(times, 50), p99: percentile(times, 99), versions, peakRssMb: peakRssMb() };
}

function runPhase(dir: string, next: bigint[], say: (s: string) => void): Promise<PhaseResult> {
  return new Promise((resolve, reject) => {
    // The flags of the process that keeps the index in `tidemark run` (node/index-loop.ts): its heap limit is what
    // bounds V8's garbage. Without them (and with a 64 MiB page cache instead of run's 16) the figure measured how
    // lazily V8 collects and how much SQLite caches: 299 MB at 1M changes, 315 MB at 10M; of the 175 MB JS heap at
    // 1M, ~25 MB was live.
    const args = [...INDEX_CHILD_FLAGS, fileURLToPath(import.meta.url), '--phase', dir, next.join(',')];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n')) if (line.trim() !== '') say(line.replace(/^bench: /, ''));
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`index phase exited with code ${code}`));
      resolve(JSON.parse(out.trim().split('\n').at(-1) as string) as PhaseResult);
    });
  });
}

export async function benchIndex(opts: { changes: number; dir: string; log?: Logger }): Promise<IndexBenchResult> {
  const say = (s: string) => (opts.log ? opts.log.info(s) : process.stderr.write(`bench: ${s}\n`));
  await rm(opts.dir, { recursive: true, force: true });
  await mkdir(opts.dir, { recursive: true });
  say(`writing a journal of ${opts.changes} changes`);
  const next = await writeJournal(opts.dir, opts.changes, say);
  say('building the rollback index (child process)');
  const r = await runPhase(opts.dir, next, say);
  say(`${r.versions} versions read for ${LOOKUPS} keys`);
  return {
    index_build_rows_per_s: Math.round(opts.changes / r.buildS),
    history_p99_ms: Number(r.p99.toFixed(2)),
    history_p50_ms: Number(r.p50.toFixed(2)),
    changes: opts.changes,
    index_bytes: await dirBytes(opts.dir, 'rollback-index.sqlite'),
    peak_rss_mb: r.peakRssMb,
  };
}

if (import.meta.main && process.argv[2] === '--phase') {
  const [dir, next] = process.argv.slice(3) as [string, string];
  const say = (s: string) => process.stderr.write(`bench: ${s}\n`);
  const r = await indexPhase(dir, next.split(',').map(BigInt), say);
  process.stdout.write(`${JSON.stringify(r)}\n`);
} else if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      changes: { type: 'string', default: '1000000' },
      dir: { type: 'string', default: '/tmp/tidemark-bench-index' },
      keep: { type: 'boolean', default: false },
    },
  });
  const dir = values.dir;
  try {
    const r = await benchIndex({ changes: Number(values.changes), dir });
    process.stdout.write(`${JSON.stringify(r)}\n`);
  } finally {
    if (!values.keep) await rm(dir, { recursive: true, force: true });
  }
}

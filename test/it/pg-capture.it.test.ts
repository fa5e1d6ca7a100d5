/**
 * PostgreSQL capture through the engine seam (capture/postgres/adapter.ts) against a real PostgreSQL 15
 * (compose/local/postgres.sh, port 5450), as the least-privilege capture role, into a MemorySink:
 *   - a baseline (exported snapshot, chunked) while a writer keeps inserting, updating (TOASTed rows too) and
 *     deleting on two tables; pg_locks sampled during the baseline shows nothing stronger than AccessShareLock
 *     on the captured tables from our backends;
 *   - the tables rebuilt from the journal entries equal the source's rows, every value's text exact;
 *   - stop, write more, restart from the journal's last commit: every writer transaction's marker row is in the
 *     journal exactly once (no loss, no duplicate), and the rebuilt tables equal the source again;
 *   - a TRUNCATE is journaled as a DDL entry (TRUNCATE TABLE "app"."b") of its own transaction; capture goes on;
 *   - through the real runtime (runNode, the config loader, the journal on disk) into the toy SQLite target
 *     (test/engine/toy/, no PostgreSQL target exists yet): a baseline plus writes arrive, values' text exact;
 *   - a baseline stopped half-way is taken again from a new slot and snapshot, then streams.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { postgresSource } from '../../capture/postgres/adapter.ts';
import { type PgSourceSection, pgSourceSchema } from '../../capture/postgres/config.ts';
import { loadConfig } from '../../config/config.ts';
import { registerEngine, unregisterEngine } from '../../config/engines.ts';
import type { SourceCapture } from '../../engine/source.ts';
import { runNode } from '../../node/supervisor.ts';
import { formatLsn } from '../../postgres/lsn.ts';
import { openPgClient } from '../../postgres/session.ts';
import { decodeEntry, encodeEntry } from '../../record/codec.ts';
import { samePosition } from '../../record/position.ts';
import type { CommitEntry, Value } from '../../record/record.ts';
import { checkSeqs, MemoryReplica, MemorySink, memoryLogger, rowsEntries } from '../fixtures/capture-kit.ts';
import { openDb, tableRows, tableShape as toyShape } from '../engine/toy/db.ts';
import { toyTarget } from '../engine/toy/target.ts';
import { CAPTURE_USER, pgAdmin, SUPERUSER_PASSWORD, startPostgres, stopPostgres } from '../fixtures/postgres.ts';

const NAME = 'pg-capture';
const PORT = 5450;
const SEED_ROWS = 20_000;

let admin: pg.Client; // superuser, database postgres
let app: pg.Client; // superuser in capdb, tidemark's session settings (the truth, as text)
let writerDb: pg.Client;
let probe: pg.Client; // superuser in capdb: pg_locks samples

function section(): PgSourceSection {
  const s = pgSourceSchema.parse({
    kind: 'postgres',
    name: 'pgsrc',
    port: PORT,
    user: CAPTURE_USER.user,
    database: 'capdb',
    publication: 'tm_pub',
    slot: 'tm_cap',
    exclude: ['app.skipped'],
    baseline: { chunk_rows: 500 },
  }) as PgSourceSection;
  Object.defineProperty(s, 'password', { value: CAPTURE_USER.password, enumerable: false });
  return s;
}

beforeAll(async () => {
  startPostgres(NAME, PORT, { fresh: true });
  admin = await pgAdmin(PORT);
  await admin.query('CREATE DATABASE capdb');
  app = await openPgClient({
    host: '127.0.0.1',
    port: PORT,
    user: 'postgres',
    password: SUPERUSER_PASSWORD,
    database: 'capdb',
  });
  writerDb = await pgAdmin(PORT, 'capdb');
  probe = await pgAdmin(PORT, 'capdb');
  await app.query(`
    CREATE SCHEMA app;
    CREATE TABLE app.a (id int PRIMARY KEY, n int NOT NULL, txt text, amt numeric(20,6), ts timestamptz,
                        bin bytea, doc jsonb, big text);
    CREATE TABLE app.b (g int, h text, v float8, tags text[], d date, PRIMARY KEY (g, h));
    CREATE TABLE app.skipped (id int PRIMARY KEY);
    ALTER TABLE app.a REPLICA IDENTITY FULL;
    ALTER TABLE app.b REPLICA IDENTITY FULL;
    ALTER TABLE app.skipped REPLICA IDENTITY FULL;
    CREATE PUBLICATION tm_pub FOR TABLE app.a, app.b, app.skipped;
    GRANT USAGE ON SCHEMA app TO tidemark_cap;
    GRANT SELECT ON ALL TABLES IN SCHEMA app TO tidemark_cap;
    INSERT INTO app.a SELECT g, g % 97, 'row ' || g || ' ü''q', (g * 1.000001)::numeric(20,6),
           '2026-12-06 12:00:00+00'::timestamptz + g * interval '1.000001 second',
           CASE WHEN g % 3 = 0 THEN NULL ELSE decode(md5(g::text), 'hex') END,
           jsonb_build_object('g', g, 'f', g / 7.0), NULL
      FROM generate_series(1, ${SEED_ROWS}) g;
    UPDATE app.a SET big = (SELECT string_agg(md5(i::text || id::text), '') FROM generate_series(1, 4000) i)
     WHERE id <= 5;
    INSERT INTO app.b SELECT g, 'seed', g / 3.0, ARRAY['x', g::text, NULL], date '2026-01-01' + g
      FROM generate_series(1, 300) g;`);
}, 300_000);

afterAll(async () => {
  await writerDb?.end().catch(() => {});
  await probe?.end().catch(() => {});
  await app?.end().catch(() => {});
  await admin?.end().catch(() => {});
  stopPostgres(NAME);
});

/** The writer: transaction w inserts marker row (w, 'w') into app.b and changes app.a; never deleted markers. */
function startWriter(first: number) {
  let next = first;
  let running = true;
  const rnd = (n: number) => 1 + Math.floor(Math.random() * n);
  const done = (async () => {
    while (running) {
      const w = next++;
      await writerDb.query('BEGIN');
      await writerDb.query("INSERT INTO app.b VALUES ($1, 'w', $2, ARRAY['m', $3], date '2026-12-06' - $1::int)", [
        w,
        w / 7,
        String(w),
      ]);
      await writerDb.query('UPDATE app.a SET n = n + 1, txt = $2 WHERE id = $1', [rnd(5), `tx ${w}`]); // TOASTed rows
      await writerDb.query('UPDATE app.a SET n = n + 1, amt = amt * 2, doc = doc || $2 WHERE id = $1', [
        rnd(SEED_ROWS),
        JSON.stringify({ w }),
      ]);
      await writerDb.query('DELETE FROM app.a WHERE id = $1', [5 + rnd(SEED_ROWS - 5)]);
      await writerDb.query("INSERT INTO app.a (id, n, txt, bin) VALUES ($1, 0, 'new', '\\xdeadbeef')", [SEED_ROWS + w]);
      if (w % 5 === 0) await writerDb.query("DELETE FROM app.b WHERE g = $1 AND h = 'seed'", [rnd(300)]);
      await writerDb.query('INSERT INTO app.skipped VALUES ($1)', [w]);
      await writerDb.query('COMMIT');
      await new Promise((r) => setTimeout(r, 3));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      return next - 1; // the last marker written
    },
  };
}

const text = (v: Value): string | null =>
  v === null ? null : v instanceof Uint8Array ? `\\x${Buffer.from(v).toString('hex')}` : String(v);

/** Source rows as sorted JSON lines (every value as the server's text). */
async function sourceRows(table: string): Promise<string[]> {
  const r = await app.query(`SELECT * FROM app.${table}`);
  return r.rows.map((row: Record<string, string | null>) => JSON.stringify(row)).sort();
}

/** The same from the rebuilt replica, columns in the table's order, bytea back to its hex text. */
function replicaRows(rep: MemoryReplica, table: string): string[] {
  return [...(rep.tables.get(`app.${table}`)?.values() ?? [])]
    .map((r) => JSON.stringify(Object.fromEntries(Object.entries(r).map(([k, v]) => [k, text(v)]))))
    .sort();
}

/** Markers (writer transaction numbers) inserted into app.b by the journal, with how often each was. */
function markerCounts(sink: MemorySink): Map<number, number> {
  const out = new Map<number, number>();
  for (const e of rowsEntries(sink.committed(), 'b')) {
    if (e.op !== 'insert') continue;
    for (const r of e.rows)
      if (r.after?.[1] === 'w') out.set(Number(r.after[0]), (out.get(Number(r.after[0])) ?? 0) + 1);
  }
  return out;
}

async function waitMarker(sink: MemorySink, w: number): Promise<void> {
  await sink.waitFor(() => markerCounts(sink).has(w), 30_000);
}

describe('PostgreSQL capture through the SourceAdapter', () => {
  it('baseline under writes, ACCESS SHARE only, exact rebuild, restart from the journal exactly once, TRUNCATE journaled', async () => {
    const src = section();
    await postgresSource.preflight(src);
    const sink = new MemorySink({ appendDelayMs: 15 });
    const { log } = memoryLogger('info');
    const open = (resume: CommitEntry | null): Promise<SourceCapture> =>
      postgresSource.capture({ source: src, sink, resume, log, forceBaseline: false });

    // ── 1: baseline while the writer runs; pg_locks sampled while the baseline copies ──
    const writer = startWriter(1);
    await new Promise((r) => setTimeout(r, 200));
    const cap1 = await open(null);
    const ac1 = new AbortController();
    const run1 = cap1.run(ac1.signal);
    let run1Error: unknown;
    run1.catch((e: unknown) => {
      run1Error = e;
    });
    const modes = new Map<string, number>();
    let samples = 0;
    while (cap1.status().phase !== 'streaming' && run1Error === undefined) {
      const r = await probe.query(
        `SELECT l.mode FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid
          WHERE s.application_name LIKE 'tidemark%' AND l.locktype = 'relation'
            AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND l.relation IN ('app.a'::regclass, 'app.b'::regclass)`,
      );
      samples++;
      for (const row of r.rows as { mode: string }[]) modes.set(row.mode, (modes.get(row.mode) ?? 0) + 1);
      await new Promise((r2) => setTimeout(r2, 20));
    }
    expect(run1Error).toBeUndefined();
    console.log(`baseline lock samples: ${samples}, modes seen: ${JSON.stringify(Object.fromEntries(modes))}`);
    expect(modes.get('AccessShareLock') ?? 0).toBeGreaterThan(0); // sampled while the copy ran
    expect([...modes.keys()]).toEqual(['AccessShareLock']);

    const lastBeforeStop = await writer.stop();
    await waitMarker(sink, lastBeforeStop).catch((e: unknown) => {
      throw new Error(
        `${String(e)}; capture: ${String(run1Error)} ${JSON.stringify(cap1.status(), (_k, v) => (typeof v === 'bigint' ? String(v) : v))}, markers ${markerCounts(sink).size} of ${lastBeforeStop}, commits ${sink.commits.length}`,
      );
    });
    sink.appendDelayMs = 0;

    // Baseline units at the consistent point, one baseline-end, then stream commits after it.
    const commits = sink.commits;
    const baseEnd = commits.findIndex((c) => c.phase === 'baseline-end');
    expect(baseEnd).toBeGreaterThan(0);
    const at = commits[baseEnd]?.position;
    expect(
      commits
        .slice(0, baseEnd)
        .every((c) => c.phase === 'baseline' && at !== undefined && samePosition(c.position, at)),
    ).toBe(true);
    const stream1 = commits.slice(baseEnd + 1);
    expect(stream1.length).toBeGreaterThan(0);
    let prev = at?.kind === 'sequence' ? at.value : -1n;
    for (const c of stream1) {
      expect(c.phase).toBe('stream');
      const v = c.position.kind === 'sequence' ? c.position.value : -1n;
      expect(v).toBeGreaterThan(prev);
      prev = v;
    }
    expect(rowsEntries(sink.committed(), 'skipped')).toHaveLength(0); // in the publication, excluded by the config
    checkSeqs(sink.entries, 1n);

    // ── 2: stop, write more, restart from the journal's last commit ──
    ac1.abort();
    await run1;
    expect(cap1.status().phase).toBe('stopped');
    const writer2 = startWriter(lastBeforeStop + 1);
    await new Promise((r) => setTimeout(r, 500));
    const lastWritten = await writer2.stop();
    const slot = await admin.query(
      "SELECT confirmed_flush_lsn::text AS f FROM pg_replication_slots WHERE slot_name = 'tm_cap'",
    );
    const journalLast = sink.commits.at(-1) as CommitEntry;
    const lastValue = journalLast.position.kind === 'sequence' ? journalLast.position.value : -1n;
    console.log(
      `journal stopped at ${formatLsn(lastValue)}, slot confirmed_flush ${(slot.rows[0] as { f: string }).f}`,
    );

    const cap2 = await open(journalLast);
    const ac2 = new AbortController();
    let run2Error: unknown;
    const run2 = cap2.run(ac2.signal).catch((e: unknown) => {
      run2Error = e;
    });
    await waitMarker(sink, lastWritten);
    expect(run2Error).toBeUndefined();

    // Every writer transaction's marker exactly once (baseline copy or stream), none lost across the restart.
    const counts = markerCounts(sink);
    const missing: number[] = [];
    const twice: number[] = [];
    for (let w = 1; w <= lastWritten; w++) {
      const n = counts.get(w) ?? 0;
      if (n === 0) missing.push(w);
      if (n > 1) twice.push(w);
    }
    expect({ missing, twice }).toEqual({ missing: [], twice: [] });
    const txIds = sink.commits.filter((c) => c.phase === 'stream').map((c) => c.txId);
    expect(new Set(txIds).size).toBe(txIds.length);
    checkSeqs(sink.entries, 1n);
    console.log(
      `writer transactions: ${lastWritten} (${lastBeforeStop} before the stop), stream commits: ${txIds.length}, entries: ${sink.entries.length}`,
    );

    // Updates of the TOASTed rows (big untouched: 'u' in the stream) carry big, filled from the FULL old image.
    const bigCol = rowsEntries(sink.committed(), 'a')[0]?.columns.findIndex((c) => c.name === 'big') ?? -1;
    const toasted = rowsEntries(sink.committed(), 'a')
      .filter((e) => e.op === 'update')
      .flatMap((e) => e.rows)
      .filter((r) => Number(r.after?.[0]) <= 5);
    expect(toasted.length).toBeGreaterThan(0);
    for (const r of toasted) expect(String(r.after?.[bigCol]).length).toBe(128_000);

    // Every entry survives the journal's codec unchanged (sequence positions, pg type names, bytes).
    for (const e of sink.entries) expect(decodeEntry(encodeEntry(e))).toEqual(e);

    // ── the tables rebuilt from the journal equal the source, value text exact ──
    const rep = new MemoryReplica();
    rep.apply(sink.committed());
    for (const t of ['a', 'b']) expect(replicaRows(rep, t)).toEqual(await sourceRows(t));

    // ── 3: TRUNCATE is journaled as a DDL entry of its own transaction (a rewind barrier); capture goes on ──
    const before = sink.commits.length;
    await writerDb.query('TRUNCATE app.b');
    const deadline = Date.now() + 20_000;
    while (sink.commits.length === before && run2Error === undefined && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(run2Error).toBeUndefined();
    const ddl = sink.entries.filter((e) => e.kind === 'ddl');
    expect(ddl.map((e) => e.sql)).toEqual(['TRUNCATE TABLE "app"."b"']);
    expect(sink.commits.at(-1)?.txId).toBe(ddl[0]?.txId);
    expect(sink.commits.at(-1)?.rowCount).toBe(0n);
    ac2.abort();
    await run2;
    expect(run2Error).toBeUndefined();
  }, 120_000);

  it('runs in the real runtime (runNode): journal on disk, a toy SQLite target equal to the source, value text exact', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-pg-node-'));
    const targetFile = join(dir, 'near.db');
    registerEngine({ target: toyTarget('toyk') });
    try {
      await app.query('DELETE FROM app.a WHERE id > 3000'); // a smaller baseline for this run
      const doc = {
        source: {
          kind: 'postgres',
          name: 'pgsrc',
          port: PORT,
          user: CAPTURE_USER.user,
          password: CAPTURE_USER.password,
          database: 'capdb',
          publication: 'tm_pub',
          slot: 'tm_node',
          exclude: ['app.skipped'],
        },
        journal: { dir: join(dir, 'journal') },
        targets: [{ name: 'near', kind: 'toyk', file: targetFile }],
        rollback: { index: false },
        log: { level: 'warn' },
      };
      writeFileSync(join(dir, 'tidemark.yaml'), stringify(doc));
      const ctl = new AbortController();
      const { log } = memoryLogger('warn');
      const done = runNode({ config: loadConfig(join(dir, 'tidemark.yaml')), log, signal: ctl.signal });
      const writer = startWriter(100_000);
      await new Promise((r) => setTimeout(r, 1500));
      const last = await writer.stop();
      const deadline = Date.now() + 30_000;
      const hasMarker = (): boolean => {
        try {
          const db = openDb(targetFile, { readOnly: true });
          try {
            return db.prepare(`SELECT 1 FROM b WHERE g = ? AND h = 'w'`).get(String(last)) !== undefined;
          } finally {
            db.close();
          }
        } catch {
          return false; // the target's tables do not exist yet
        }
      };
      while (!hasMarker() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      ctl.abort();
      expect(await done).toBe(0);
      expect(hasMarker()).toBe(true);
      const db = openDb(targetFile, { readOnly: true });
      try {
        for (const t of ['a', 'b']) {
          const { columns } = toyShape(db, t);
          const got = tableRows(db, t)
            .map((r) => JSON.stringify(Object.fromEntries(columns.map((c, i) => [c.name, text(r[i] ?? null)]))))
            .sort();
          expect(got).toEqual(await sourceRows(t));
        }
      } finally {
        db.close();
      }
    } finally {
      unregisterEngine('toyk');
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);

  it('an unfinished baseline is taken again: old slot dropped, a new snapshot, then the stream', async () => {
    const src = { ...section(), slot: 'tm_redo', baseline: { chunk_rows: 100 } };
    Object.defineProperty(src, 'password', { value: CAPTURE_USER.password, enumerable: false });
    const sink = new MemorySink({ appendDelayMs: 20 });
    const { log } = memoryLogger('warn');
    const first = await postgresSource.capture({ source: src, sink, resume: null, log, forceBaseline: false });
    const ac = new AbortController();
    const run = first.run(ac.signal);
    await sink.waitFor((cs) => cs.length >= 2, 20_000);
    ac.abort();
    await run;
    const cut = sink.commits.at(-1) as CommitEntry;
    expect(cut.phase).toBe('baseline'); // stopped inside the baseline
    const slot1 = await admin.query(
      "SELECT catalog_xmin::text AS x FROM pg_replication_slots WHERE slot_name = 'tm_redo'",
    );
    expect(slot1.rows).toHaveLength(1);

    sink.appendDelayMs = 0;
    const second = await postgresSource.capture({ source: src, sink, resume: cut, log, forceBaseline: false });
    const ac2 = new AbortController();
    const run2 = second.run(ac2.signal);
    await sink.waitFor((cs) => cs.some((c) => c.phase === 'baseline-end'), 30_000);
    await writerDb.query("INSERT INTO app.b VALUES (-1, 'redo', 0, '{}', '2026-12-06')");
    await sink.waitFor(() =>
      rowsEntries(sink.committed(), 'b').some((e) => e.rows.some((r) => r.after?.[1] === 'redo')),
    );
    ac2.abort();
    await run2;
    const ends = sink.commits.filter((c) => c.phase === 'baseline-end');
    expect(ends).toHaveLength(1);
    // The second baseline's units follow the cut, at the new slot's consistent point (not the first one's).
    const redo = sink.commits.slice(sink.commits.indexOf(cut) + 1).filter((c) => c.phase === 'baseline');
    expect(redo.length).toBeGreaterThan(0);
    expect(samePosition(redo[0]?.position ?? cut.position, cut.position)).toBe(false);
    checkSeqs(sink.entries, 1n);
  }, 60_000);
});

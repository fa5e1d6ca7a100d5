/**
 * Issue #14's acceptance lines for PostgreSQL capture and apply, at full scale, on a real PostgreSQL 15
 * (compose/local/postgres.sh; source on port 5485, target on 5486):
 *   - acknowledgement at 1k tx/s: the capture (postgresSource) writes a real journal on disk (group fsync);
 *     confirmed_flush_lsn, sampled every 100 ms, never passes the commit of a transaction the journal did not yet
 *     hold durably; then, the captured database idle, 200 MB of WAL written in another database: restart_lsn
 *     passes all of it within 30 s (no forced CHECKPOINT);
 *   - a baseline under concurrent writes on three tables, pg_locks sampled every 20 ms (nothing stronger than
 *     ACCESS SHARE from tidemark's backends), then 20 SIGKILLs of `tidemark run` (capture and apply in one process)
 *     under the workload: the target equal to the source (row text and the adapter's verify), each writer
 *     transaction's marker in the journal exactly once and applied exactly once (an ALWAYS trigger counts);
 *   - a slot lost to max_slot_wal_keep_size while capture is stopped: the resume fails with PG_SLOT_LOST naming
 *     the re-baseline, and nothing is journaled (never a silent skip).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { postgresTarget } from '../../apply/postgres/adapter.ts';
import type { PgTargetSection } from '../../apply/postgres/config.ts';
import { postgresSource } from '../../capture/postgres/adapter.ts';
import { type PgSourceSection, pgSourceSchema } from '../../capture/postgres/config.ts';
import type { TidemarkError } from '../../core/errors.ts';
import { JournalSink, JournalWriter } from '../../journal/index.ts';
import { parseLsn } from '../../postgres/lsn.ts';
import { openPgClient } from '../../postgres/session.ts';
import type { CommitEntry } from '../../record/record.ts';
import { MemorySink, memoryLogger } from '../fixtures/capture-kit.ts';
import { DurableLog, journalEntries, notOnce } from '../fixtures/journal-markers.ts';
import {
  APPLY_USER,
  CAPTURE_USER,
  pgAdmin,
  SUPERUSER_PASSWORD,
  startPostgres,
  stopPostgres,
} from '../fixtures/postgres.ts';
import { prng } from '../fixtures/prng.ts';
import { exited, startRun, stopRun } from '../fixtures/topology.ts';

const SRC = { name: 'pgacc-src', port: 5485 };
const DST = { name: 'pgacc-dst', port: 5486 };
const ACK_TX = 10_000; // at 1k tx/s: ~10 s
const IDLE_WAL = 200n << 20n;
const KILLS = 20;

let dir = '';
let admin: pg.Client; // superuser, database postgres of the source
let run: ChildProcess | null = null;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const superuser = (port: number, database: string) =>
  openPgClient({ host: '127.0.0.1', port, user: 'postgres', password: SUPERUSER_PASSWORD, database });

beforeAll(async () => {
  startPostgres(SRC.name, SRC.port, { fresh: true });
  startPostgres(DST.name, DST.port, { fresh: true });
  admin = await pgAdmin(SRC.port);
  for (const db of ['ackdb', 'appdb', 'lostdb', 'otherdb']) await admin.query(`CREATE DATABASE ${db}`);
  const a = await pgAdmin(DST.port);
  await a.query('CREATE DATABASE appdb');
  await a.end();
  dir = mkdtempSync(join(tmpdir(), 'tm-pg-acc-'));
}, 300_000);

afterAll(async () => {
  await stopRun(run);
  await admin?.end().catch(() => {});
  stopPostgres(SRC.name);
  stopPostgres(DST.name);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A captured database: schema app with `ddl`, every table FULL, in publication tm_pub, readable by the capture role. */
async function capturedDb(database: string, ddl: string, tables: string[]): Promise<pg.Client> {
  const c = await superuser(SRC.port, database);
  await c.query(`CREATE SCHEMA app; ${ddl}
    ${tables.map((t) => `ALTER TABLE app.${t} REPLICA IDENTITY FULL;`).join(' ')}
    CREATE PUBLICATION tm_pub FOR TABLE ${tables.map((t) => `app.${t}`).join(', ')};
    GRANT USAGE ON SCHEMA app TO tidemark_cap; GRANT SELECT ON ALL TABLES IN SCHEMA app TO tidemark_cap;`);
  return c;
}

function sourceSection(database: string, slot: string): PgSourceSection {
  const s = pgSourceSchema.parse({
    kind: 'postgres',
    name: 'pgsrc',
    port: SRC.port,
    user: CAPTURE_USER.user,
    database,
    publication: 'tm_pub',
    slot,
  }) as PgSourceSection;
  Object.defineProperty(s, 'password', { value: CAPTURE_USER.password, enumerable: false });
  return s;
}

async function slotLsns(slot: string): Promise<{ flush: bigint; restart: bigint }> {
  const r = await admin.query(
    'SELECT confirmed_flush_lsn::text AS f, restart_lsn::text AS r FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  return { flush: parseLsn(r.rows[0].f), restart: parseLsn(r.rows[0].r) };
}

const walNow = async (c: pg.Client) => parseLsn((await c.query('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l);

describe('PostgreSQL acceptance (issue #14)', () => {
  it('acknowledges only durable commits at 1k tx/s; an idle database with 200 MB of WAL elsewhere releases it within 30 s', async () => {
    const app = await capturedDb(
      'ackdb',
      `CREATE TABLE app.ka (w int PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());
       CREATE TABLE app.kb (id int PRIMARY KEY, n bigint NOT NULL);
       INSERT INTO app.kb SELECT g, 0 FROM generate_series(0, 99) g;`,
      ['ka', 'kb'],
    );
    const journal = join(dir, 'ack-journal');
    const writer = await JournalWriter.open({ dir: journal, fsync: 'group', groupCommitMs: 5, segmentBytes: 64 << 20 });
    const sink = new DurableLog(new JournalSink(writer));
    const { log } = memoryLogger('warn');
    const capture = await postgresSource.capture({
      source: sourceSection('ackdb', 'tm_ack'),
      sink,
      resume: null,
      log,
      forceBaseline: false,
    });
    const ac = new AbortController();
    let runError: unknown;
    const running = capture.run(ac.signal).catch((e: unknown) => {
      runError = e;
    });
    const t0 = Date.now();
    while (capture.status().phase !== 'streaming' && runError === undefined && Date.now() - t0 < 30_000)
      await sleep(50);
    expect(runError).toBeUndefined();

    // confirmed_flush_lsn every 100 ms, each sample stamped with the time its answer arrived.
    const samples: { flush: bigint; at: number }[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const { flush } = await slotLsns('tm_ack');
        samples.push({ flush, at: performance.now() });
        await sleep(100);
      }
    })();
    // 1000 tx/s paced by the server itself: each transaction inserts its marker and updates another table. Commits
    // do not wait for their WAL flush (synchronous_commit off): a flush per commit caps this machine at ~500 tx/s.
    await app.query('SET synchronous_commit = off');
    const w0 = performance.now();
    await app.query(`DO $$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN
      FOR i IN 1..${ACK_TX} LOOP
        INSERT INTO app.ka (w) VALUES (i);
        UPDATE app.kb SET n = n + i WHERE id = i % 100;
        COMMIT;
        IF i % 20 = 0 THEN
          PERFORM pg_sleep(greatest(0, extract(epoch FROM t0 + i * interval '1 ms' - clock_timestamp())));
        END IF;
      END LOOP; END $$`);
    const writeMs = performance.now() - w0;
    const streamed = () => sink.durable.filter((d) => d.phase === 'stream').length;
    const t1 = Date.now();
    while (streamed() < ACK_TX && runError === undefined && Date.now() - t1 < 30_000) await sleep(50);
    const lagMs = Date.now() - t1;
    expect(runError).toBeUndefined();
    expect(streamed()).toBe(ACK_TX);
    await sleep(300);
    sampling = false;
    await sampler;

    // No sample passed the commit of a transaction not yet durable when the sample's answer arrived.
    const stream = sink.durable.filter((d) => d.phase === 'stream');
    let violations = 0;
    let pendingSamples = 0;
    let overshoot = 0n;
    for (const s of samples) {
      const pending = stream.filter((d) => d.at > s.at);
      if (pending.length > 0) {
        pendingSamples++;
        const first = pending.reduce((m, d) => (d.commitLsn < m ? d.commitLsn : m), pending[0]?.commitLsn ?? 0n);
        if (s.flush > first) violations++;
      }
      const durableEnd = sink.durable.filter((d) => d.at <= s.at).reduce((m, d) => (d.end > m ? d.end : m), 0n);
      if (s.flush - durableEnd > overshoot) overshoot = s.flush - durableEnd;
    }
    console.log(
      `ack: ${ACK_TX} tx in ${Math.round(writeMs)} ms (${Math.round((ACK_TX * 1000) / writeMs)} tx/s), journal caught up ` +
        `${lagMs} ms after; ${samples.length} samples, ${pendingSamples} with transactions pending, ${violations} past a ` +
        `pending commit; max confirmed_flush beyond the last durable commit end: ${overshoot} bytes`,
    );
    expect(writeMs).toBeLessThan(ACK_TX * 1.5); // the rate held: at least ~670 tx/s
    expect(pendingSamples).toBeGreaterThan(50); // the check had teeth
    expect(violations).toBe(0);

    // ── idle: the captured database writes nothing; 200 MB of WAL in another database ──
    await sleep(1000);
    const before = await slotLsns('tm_ack');
    const other = await pgAdmin(SRC.port, 'otherdb');
    await other.query('CREATE TABLE filler (g int, pad text)');
    const i0 = performance.now();
    const start = await walNow(other);
    while ((await walNow(other)) - start < IDLE_WAL) {
      await other.query("INSERT INTO filler SELECT g, repeat('x', 1800) FROM generate_series(1, 20000) g");
    }
    const written = await walNow(other);
    const fillMs = performance.now() - i0;
    const i1 = performance.now();
    let now = before;
    while (performance.now() - i1 < 30_000) {
      now = await slotLsns('tm_ack');
      if (now.restart >= written) break;
      await sleep(250);
    }
    const advanceMs = Math.round(performance.now() - i1);
    console.log(
      `idle: ${(written - start) >> 20n} MB of WAL written elsewhere in ${Math.round(fillMs)} ms; restart_lsn ` +
        `${before.restart} → ${now.restart}, confirmed_flush ${before.flush} → ${now.flush} (WAL end ${written}) ` +
        `${advanceMs} ms after the last write`,
    );
    expect(now.restart).toBeGreaterThanOrEqual(written);
    // Capture's read position (read.json, what verify/status compare with pg_current_wal_lsn()) moved with it:
    // nothing of the idle WAL was captured, yet capture has read past it.
    const read = capture.status().readPosition;
    expect(read?.kind === 'sequence' ? read.value : 0n).toBeGreaterThanOrEqual(written);
    await other.query('DROP TABLE filler');
    await other.end();

    ac.abort();
    await running;
    await writer.close();
    await admin.query("SELECT pg_drop_replication_slot('tm_ack')");
    // Every transaction of the workload in the journal exactly once.
    expect(notOnce(await journalEntries(journal), 'ka', ACK_TX)).toEqual({ missing: [], twice: [] });
    await app.end();
  }, 150_000);

  it('baseline under writes takes ACCESS SHARE only; 20 SIGKILLs of capture and apply: equal, every transaction exactly once', async () => {
    const shape = `CREATE TABLE app.acct (id int PRIMARY KEY, bal numeric(20,6) NOT NULL, ts timestamptz, note text);
      CREATE TABLE app.ev (w int, k int, doc jsonb, PRIMARY KEY (w, k));
      CREATE TABLE app.m (w int PRIMARY KEY, at timestamptz NOT NULL);`;
    const src = await capturedDb(
      'appdb',
      `${shape} INSERT INTO app.acct SELECT g, g / 7.0, now(), repeat(md5(g::text), 3) FROM generate_series(1, 20000) g;`,
      ['acct', 'ev', 'm'],
    );
    const dst = await superuser(DST.port, 'appdb');
    await dst.query(`CREATE SCHEMA app; ${shape}
      CREATE TABLE app.applied_markers (w int NOT NULL);
      CREATE FUNCTION app.count_marker() RETURNS trigger LANGUAGE plpgsql AS
        $$BEGIN INSERT INTO app.applied_markers VALUES (NEW.w); RETURN NEW; END$$;
      CREATE TRIGGER count_marker AFTER INSERT ON app.m FOR EACH ROW EXECUTE FUNCTION app.count_marker();
      ALTER TABLE app.m ENABLE ALWAYS TRIGGER count_marker;
      GRANT SET ON PARAMETER session_replication_role TO tidemark_apply;
      GRANT CREATE ON DATABASE appdb TO tidemark_apply; GRANT USAGE ON SCHEMA app TO tidemark_apply;
      GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app TO tidemark_apply;`);
    const journal = join(dir, 'kill-journal');
    const config = join(dir, 'kill.yaml');
    writeFileSync(
      config,
      stringify({
        source: {
          ...sourceSection('appdb', 'tm_kill'),
          password: CAPTURE_USER.password,
          baseline: { chunk_rows: 500 },
        },
        journal: { dir: journal, fsync: 'group', group_commit_ms: 5 },
        targets: [{ kind: 'postgres', name: 'pgdst', port: DST.port, ...APPLY_USER, database: 'appdb' }],
        rollback: { index: false },
        log: { level: 'warn' },
      }),
    );
    // Two writers; transaction w inserts its marker, updates two accounts (ascending: no deadlock), inserts two
    // events, deletes an older event now and then.
    const rnd = prng(14);
    let next = 0;
    let writing = true;
    const writers = [0, 1].map(async () => {
      const c = await pgAdmin(SRC.port, 'appdb'); // not openPgClient: its application_name is tidemark's
      try {
        while (writing) {
          const w = ++next;
          const [a, b] = [1 + Math.floor(rnd() * 20000), 1 + Math.floor(rnd() * 20000)].sort((x, y) => x - y);
          await c.query('BEGIN');
          await c.query('INSERT INTO app.m VALUES ($1, now())', [w]);
          await c.query('UPDATE app.acct SET bal = bal + 0.000001 * $1::int, ts = now() WHERE id IN ($2, $3)', [
            w,
            a,
            b,
          ]);
          await c.query(
            `INSERT INTO app.ev VALUES ($1, 1, jsonb_build_object('w', $1::int)), ($1, 2, '{"ü": [1, null]}')`,
            [w],
          );
          if (w % 3 === 0) await c.query('DELETE FROM app.ev WHERE w = $1 AND k = 1', [w - 2]);
          await c.query('COMMIT');
          await sleep(25); // ~60 tx/s in all: the runs restarted 20 times must keep up
        }
      } finally {
        await c.end();
      }
    });
    const applied = async () =>
      Number(
        (
          await dst
            .query("SELECT coalesce(max(seq), 0)::text AS s FROM tidemark.applied WHERE phase = 'stream'")
            .catch(() => ({ rows: [{ s: '0' }] }))
        ).rows[0].s,
      );
    const probe = await pgAdmin(SRC.port, 'appdb');
    const modes = new Map<string, number>();
    const startedAt = performance.now();
    let kills = 0;
    try {
      await sleep(300);
      // ── the baseline while the writers run; pg_locks of tidemark's backends every 20 ms until it streams ──
      run = startRun(config);
      const t0 = Date.now();
      while ((await applied()) === 0 && Date.now() - t0 < 60_000 && run.exitCode === null) {
        const r = await probe.query(
          `SELECT l.mode FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid
            WHERE s.application_name LIKE 'tidemark%' AND l.locktype = 'relation'
              AND l.relation IN ('app.acct'::regclass, 'app.ev'::regclass, 'app.m'::regclass)`,
        );
        for (const row of r.rows as { mode: string }[]) modes.set(row.mode, (modes.get(row.mode) ?? 0) + 1);
        await sleep(20);
      }
      const baselineMs = Date.now() - t0;
      expect((await applied()) > 0, (run as ChildProcess & { lastStderr: () => string }).lastStderr()).toBe(true);
      // ── SIGKILLs: each once the target advanced since the previous run (or 5 s), after a random 0-400 ms more ──
      const cycles: number[] = [];
      for (;;) {
        const seen = await applied();
        const t1 = Date.now();
        while ((await applied()) === seen && Date.now() - t1 < 5000 && run.exitCode === null) await sleep(50);
        cycles.push(Date.now() - t1);
        if (run.exitCode !== null)
          throw new Error(`tidemark run exited: ${(run as ChildProcess & { lastStderr: () => string }).lastStderr()}`);
        await sleep(Math.floor(rnd() * 400));
        run.kill('SIGKILL');
        await exited(run);
        if (++kills === KILLS) break;
        run = startRun(config);
      }
      writing = false;
      await Promise.all(writers);
      const last = next;
      run = startRun(config);
      const t2 = Date.now();
      const caughtUp = async () => (await dst.query('SELECT 1 FROM app.m WHERE w = $1', [last])).rows.length === 1;
      while (!(await caughtUp()) && Date.now() - t2 < 60_000 && run.exitCode === null) await sleep(100);
      if (!(await caughtUp())) {
        const got = (await dst.query('SELECT count(*) AS n, max(w) AS w FROM app.m')).rows[0];
        throw new Error(
          `target not caught up to marker ${last} (has ${JSON.stringify(got)}); run's stderr: ` +
            (run as ChildProcess & { lastStderr: () => string }).lastStderr(),
        );
      }
      const catchUpMs = Date.now() - t2;
      await stopRun(run);
      run = null;
      console.log(
        `kills: ${kills} SIGKILLs of tidemark run, ${last} writer transactions, baseline applied in ${baselineMs} ms, ` +
          `lock modes seen ${JSON.stringify(Object.fromEntries(modes))}, ms from each start to the target advancing ` +
          `${JSON.stringify(cycles)}, final catch-up ${catchUpMs} ms, all in ${Math.round(performance.now() - startedAt)} ms`,
      );
      // No lock stronger than ACCESS SHARE was taken by tidemark on the source while the baseline ran.
      expect(modes.get('AccessShareLock') ?? 0).toBeGreaterThan(0);
      expect([...modes.keys()]).toEqual(['AccessShareLock']);
      // Equal: every row's text, and the adapter's verify.
      const rows = async (c: pg.Client, t: string) =>
        (await c.query(`SELECT row_to_json(x)::text AS j FROM app.${t} x ORDER BY 1`)).rows.map((r) => String(r.j));
      for (const t of ['acct', 'ev', 'm']) expect(await rows(dst, t), `app.${t}`).toEqual(await rows(src, t));
      const target = {
        kind: 'postgres',
        name: 'pgdst',
        host: '127.0.0.1',
        port: DST.port,
        database: 'appdb',
        user: APPLY_USER.user,
        connect_timeout_ms: 10_000,
        verify: { chunk_rows: 2000 },
      };
      Object.defineProperty(target, 'password', { value: APPLY_USER.password, enumerable: false });
      const v = await postgresTarget.verify({
        source: sourceSection('appdb', 'tm_kill'),
        target: target as PgTargetSection,
        log: pino({ level: 'silent' }),
      });
      expect(v.tables.map((t) => [t.table, t.equal, t.rows === t.replicaRows])).toEqual([
        ['acct', true, true],
        ['ev', true, true],
        ['m', true, true],
      ]);
      // Exactly once: each writer transaction's marker in the journal once (baseline copy or stream), and applied once.
      const entries = await journalEntries(journal);
      expect(notOnce(entries, 'm', last)).toEqual({ missing: [], twice: [] });
      const txIds = (entries as CommitEntry[])
        .filter((e) => e.kind === 'commit' && e.phase === 'stream')
        .map((e) => e.txId);
      expect(new Set(txIds).size).toBe(txIds.length);
      const counts = await dst.query('SELECT w, count(*)::int AS n FROM app.applied_markers GROUP BY w ORDER BY w');
      expect(counts.rows.map((r) => Number(r.w))).toEqual(Array.from({ length: last }, (_, i) => i + 1));
      expect(counts.rows.filter((r) => Number(r.n) !== 1)).toEqual([]);
    } finally {
      writing = false;
      await Promise.all(writers).catch(() => {});
      await stopRun(run);
      run = null;
      await probe.end();
      await src.end();
      await dst.end();
    }
    expect(kills).toBe(KILLS);
    await admin.query("SELECT pg_drop_replication_slot('tm_kill')");
  }, 180_000);

  it('a slot lost to max_slot_wal_keep_size while capture is stopped: PG_SLOT_LOST naming the re-baseline, nothing journaled', async () => {
    const app = await capturedDb('lostdb', 'CREATE TABLE app.x (id int PRIMARY KEY, pad text);', ['x']);
    const source = sourceSection('lostdb', 'tm_lost');
    const sink = new MemorySink();
    const { log } = memoryLogger('warn');
    const first = await postgresSource.capture({ source, sink, resume: null, log, forceBaseline: false });
    const ac = new AbortController();
    const running = first.run(ac.signal);
    const t0 = Date.now();
    while (first.status().phase !== 'streaming' && Date.now() - t0 < 30_000) await sleep(50);
    await app.query("INSERT INTO app.x VALUES (1, 'before the stop')");
    await sink.waitFor((cs) => cs.some((c) => c.phase === 'stream'), 30_000);
    ac.abort();
    await running;
    const journaled = sink.commits.length;
    const resume = sink.commits.at(-1) as CommitEntry;
    // Written while capture is stopped: these transactions must never be skipped silently.
    await app.query("INSERT INTO app.x SELECT g, 'while stopped' FROM generate_series(2, 100) g");
    await admin.query("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'");
    await admin.query('SELECT pg_reload_conf()');
    try {
      const other = await pgAdmin(SRC.port, 'otherdb');
      const status = async () =>
        (await admin.query("SELECT wal_status AS s FROM pg_replication_slots WHERE slot_name = 'tm_lost'")).rows[0].s;
      for (let i = 0; i < 5 && (await status()) !== 'lost'; i++) {
        await other.query(
          `CREATE TABLE lost_${i} AS SELECT g, repeat(md5(g::text), 8) AS pad FROM generate_series(1, 20000) g`,
        );
        await other.query('SELECT pg_switch_wal()');
        await other.query('CHECKPOINT');
      }
      await other.end();
      expect(await status()).toBe('lost');
      const again = await postgresSource.capture({ source, sink, resume, log, forceBaseline: false });
      const err = (await again.run(new AbortController().signal).then(
        () => new Error('the resume did not fail'),
        (e: unknown) => e,
      )) as TidemarkError;
      console.log(`slot lost: ${err.code}: ${err.message}`);
      expect({ code: err.code, retriable: err.retriable }).toEqual({ code: 'PG_SLOT_LOST', retriable: false });
      expect(err.message).toMatch(/tm_lost was invalidated.*re-baseline \(tidemark run --rebaseline\)/);
      expect(sink.commits.length).toBe(journaled);
    } finally {
      await admin.query('ALTER SYSTEM RESET max_slot_wal_keep_size');
      await admin.query('SELECT pg_reload_conf()');
      await app.end();
    }
  }, 60_000);
});

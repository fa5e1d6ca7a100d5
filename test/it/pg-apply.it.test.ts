/**
 * PostgreSQL → PostgreSQL through the real runtime (the `tidemark run` CLI in a child process): the postgres
 * SourceAdapter on a source PostgreSQL 15 (port 5460) → the journal on disk → the postgres TargetAdapter
 * (apply/postgres) on a target PostgreSQL 15 (port 5461), as the least-privilege roles tidemark_cap and
 * tidemark_apply (the latter granted SET ON PARAMETER session_replication_role, not superuser):
 *   - a table with timestamp(6), timestamptz, numeric(38,10), jsonb, bytea, int[], text[], uuid, interval and a
 *     TOASTed text (a ~1 MB value whose row is updated in another column), under inserts, updates and deletes;
 *   - `tidemark run` is killed with SIGKILL three times mid-stream and restarted;
 *   - afterwards every row of the target equals the source's (row_to_json text, ordered by the key), an ALWAYS
 *     trigger on the target saw each writer transaction's marker applied exactly once, an ordinary trigger never
 *     fired (session_replication_role = replica), and tidemark.applied stores the journal's last commit;
 *   - verify (the adapter's) says equal, then finds a row changed behind its back;
 *   - the engine contract (test/engine/contract.ts) with PostgreSQL as source and target: databases "contract"
 *     (source), "near" and "far" (targets, "far" at a standby site fed over plaintext TCP on port 5462);
 *   - the applier alone: a re-delivered transaction is skipped, a 0-row UPDATE is APPLY_DIVERGED, a DDL entry is
 *     refused, and without SET ON PARAMETER session_replication_role the apply fails PG_PRIVILEGE, nothing kept;
 *   - the replication origin: a capture of the target (its own publication and slot) never sees the transactions
 *     the applier wrote there, but does see a local write; without the origin grants apply fails PG_PRIVILEGE
 *     naming the GRANT.
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
import { MemorySink, memoryLogger, rowsEntries } from '../fixtures/capture-kit.ts';
import { lastCommit } from '../../journal/index.ts';
import { positionToJson, sequencePosition } from '../../record/position.ts';
import type { CommitEntry, RowsEntry } from '../../record/record.ts';
import type { JournalItem } from '../../engine/target.ts';
import type { TidemarkError } from '../../core/errors.ts';
import { APPLY_USER, CAPTURE_USER, pgAdmin, startPgPair, superuserClient, stopPostgres } from '../fixtures/postgres.ts';
import { exited, startRun, stopRun } from '../fixtures/topology.ts';
import { journalEntries } from '../fixtures/journal-markers.ts';
import { type ContractEngine, runEngineContract } from '../engine/contract.ts';

const SRC = { name: 'pgapply-src', port: 5460 };
const DST = { name: 'pgapply-dst', port: 5461 };
const SEED = 200;

const TABLES = `
  CREATE SCHEMA app;
  CREATE TABLE app.t (id int PRIMARY KEY, n int NOT NULL, ts timestamp(6), tz timestamptz, amt numeric(38,10),
    doc jsonb, bin bytea, ints int[], txts text[], u uuid, iv interval, big text);
  CREATE TABLE app.m (w int PRIMARY KEY, at timestamptz NOT NULL);`;

let dir = '';
let run: ChildProcess | null = null;
let src: pg.Client; // superuser sessions in appdb with tidemark's session settings (values as text)
let dst: pg.Client;

const superuser = (port: number) => superuserClient(port, 'appdb');

beforeAll(async () => {
  ({ src, dst } = await startPgPair(SRC, DST, 'appdb'));
  await src.query(`${TABLES}
    ALTER TABLE app.t REPLICA IDENTITY FULL;
    ALTER TABLE app.m REPLICA IDENTITY FULL;
    CREATE PUBLICATION tm_pub FOR TABLE app.t, app.m;
    GRANT USAGE ON SCHEMA app TO tidemark_cap;
    GRANT SELECT ON ALL TABLES IN SCHEMA app TO tidemark_cap;
    INSERT INTO app.t SELECT g, 0, '2026-12-06 12:00:00'::timestamp + g * interval '1.000001 s',
      '2026-12-06 12:00:00.123456+05:30'::timestamptz - g * interval '1 day 0.5 s', g * 1234567.0123456789 / 7,
      jsonb_build_object('g', g, 'f', g / 7.0, 'a', jsonb_build_array(1, 'x', null)),
      CASE WHEN g % 4 = 0 THEN NULL ELSE decode(md5(g::text), 'hex') END,
      ARRAY[g, -g, NULL], ARRAY['a b', 'q"u', NULL, E'back\\\\slash'], md5(g::text)::uuid,
      make_interval(0, g, 0, g, g, 0, g * 0.000001), NULL
      FROM generate_series(1, ${SEED}) g;
    UPDATE app.t SET big = (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 32768) i) WHERE id = 1;`);
  // The target: the same tables, a role that may set session_replication_role (PostgreSQL 15: GRANT SET ON
  // PARAMETER), an ALWAYS trigger counting marker applications and an ordinary trigger that must never fire.
  await dst.query(`${TABLES}
    CREATE TABLE app.applied_markers (w int NOT NULL);
    CREATE TABLE app.ordinary_fired (id int);
    CREATE FUNCTION app.count_marker() RETURNS trigger LANGUAGE plpgsql AS
      $$BEGIN INSERT INTO app.applied_markers VALUES (NEW.w); RETURN NEW; END$$;
    CREATE TRIGGER count_marker AFTER INSERT ON app.m FOR EACH ROW EXECUTE FUNCTION app.count_marker();
    ALTER TABLE app.m ENABLE ALWAYS TRIGGER count_marker;
    CREATE FUNCTION app.ordinary() RETURNS trigger LANGUAGE plpgsql AS
      $$BEGIN INSERT INTO app.ordinary_fired VALUES (NEW.id); RETURN NEW; END$$;
    CREATE TRIGGER ordinary AFTER INSERT OR UPDATE ON app.t FOR EACH ROW EXECUTE FUNCTION app.ordinary();
    GRANT SET ON PARAMETER session_replication_role TO tidemark_apply;
    GRANT CREATE ON DATABASE appdb TO tidemark_apply;
    GRANT USAGE ON SCHEMA app TO tidemark_apply;
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app TO tidemark_apply;`);
  dir = mkdtempSync(join(tmpdir(), 'tm-pg-apply-'));
}, 300_000);

afterAll(async () => {
  await stopRun(run);
  await src?.end().catch(() => {});
  await dst?.end().catch(() => {});
  stopPostgres(SRC.name);
  stopPostgres(DST.name);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function targetSection(): PgTargetSection {
  const t = {
    kind: 'postgres' as const,
    name: 'pgdst',
    host: '127.0.0.1',
    port: DST.port,
    user: APPLY_USER.user,
    database: 'appdb',
    connect_timeout_ms: 10_000,
    verify: { chunk_rows: 40 },
  };
  Object.defineProperty(t, 'password', { value: APPLY_USER.password, enumerable: false });
  return t as PgTargetSection;
}

/** Writer transaction w: a marker row, updates (the TOASTed row in another column too), an insert, a delete. */
async function writeTx(c: pg.Client, w: number): Promise<void> {
  const id = 1 + (w % SEED);
  await c.query('BEGIN');
  await c.query('INSERT INTO app.m VALUES ($1, now())', [w]);
  await c.query(
    `UPDATE app.t SET n = n + 1, amt = amt * -3 / 7, tz = tz + interval '0.000001 s', ints = ints || $2::int,
       doc = doc || jsonb_build_object('w', $2::int), iv = iv + interval '1 mon 1 us', txts = txts || $3::text
     WHERE id = $1`,
    [id, w, `w'${w}`],
  );
  // The TOASTed row (~1 MB), updated in another column (not every time: each update journals 2 MB).
  if (w % 20 === 1) await c.query('UPDATE app.t SET n = n + 1 WHERE id = 1');
  await c.query(
    `INSERT INTO app.t (id, n, ts, bin, u, doc) VALUES ($1, $2, '2026-12-06 00:00:00.000001'::timestamp + $2::int * interval '1 s',
       '\\x00ff'::bytea || int4send($2::int), gen_random_uuid(), '{"ü": "\\u00e9"}') `,
    [100_000 + w, w],
  );
  if (w % 3 === 0) await c.query('DELETE FROM app.t WHERE id = $1', [100_000 + w - 1]);
  if (w % 7 === 0) await c.query('UPDATE app.t SET id = id + 1000000 WHERE id = $1', [100_000 + w - 2]); // key change
  await c.query('COMMIT');
}

const rows = async (c: pg.Client, table: string) =>
  (await c.query(`SELECT row_to_json(x)::text AS j FROM app.${table} x ORDER BY 1`)).rows.map((r) => String(r['j']));

describe('PostgreSQL target (apply/postgres)', () => {
  it('applies captured transactions exactly once across SIGKILLs, every value equal to the source', async () => {
    const config = join(dir, 'tidemark.yaml');
    writeFileSync(
      config,
      stringify({
        source: {
          kind: 'postgres',
          name: 'pgsrc',
          port: SRC.port,
          user: CAPTURE_USER.user,
          password: CAPTURE_USER.password,
          database: 'appdb',
          publication: 'tm_pub',
          slot: 'tm_apply',
          baseline: { chunk_rows: 50 },
        },
        journal: { dir: join(dir, 'journal') },
        targets: [{ kind: 'postgres', name: 'pgdst', port: DST.port, ...APPLY_USER, database: 'appdb' }],
        rollback: { index: false },
        log: { level: 'warn' },
      }),
    );
    const writer = await superuser(SRC.port);
    let w = 0;
    let writing = true;
    let writeError: unknown;
    const writes = (async () => {
      while (writing) {
        await writeTx(writer, ++w);
        await new Promise((r) => setTimeout(r, 5));
      }
    })().catch((err: unknown) => {
      writeError = err;
    });
    try {
      for (let kill = 1; kill <= 3; kill++) {
        run = startRun(config);
        await new Promise((r) => setTimeout(r, 2500));
        if (run.exitCode !== null) {
          throw new Error(
            `tidemark run exited by itself: ${(run as ChildProcess & { lastStderr: () => string }).lastStderr()}`,
          );
        }
        run.kill('SIGKILL');
        await exited(run);
      }
      writing = false;
      await writes;
      if (writeError) throw writeError;
      run = startRun(config);
      const deadline = Date.now() + 90_000; // generous: a loaded CI machine runs two integration files at once
      // The last marker applied is not enough: when every earlier run was killed inside its baseline, this run
      // takes the whole baseline, app.m's chunks before app.t's. Caught up = both tables as the source's.
      const count = async (c: pg.Client, t: string) =>
        Number((await c.query(`SELECT count(*) AS n FROM app.${t}`)).rows[0]?.['n'] ?? -1);
      const caughtUp = async () =>
        (await dst.query('SELECT 1 FROM app.m WHERE w = $1', [w]).catch(() => ({ rows: [] }))).rows.length === 1 &&
        (await count(dst, 't').catch(() => -1)) === (await count(src, 't')) &&
        (await rows(dst, 't').catch(() => [])).join('\n') === (await rows(src, 't')).join('\n');
      while (!(await caughtUp()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      if (!(await caughtUp())) {
        const got = await dst.query('SELECT max(w) AS w FROM app.m');
        const stored = await dst.query('SELECT seq, lsn, position FROM tidemark.applied');
        const slots = await src.query('SELECT slot_name, active_pid, confirmed_flush_lsn FROM pg_replication_slots');
        throw new Error(
          `target not caught up to marker ${w}: has ${JSON.stringify(got.rows)}, stored ${JSON.stringify(stored.rows)}, ` +
            `slots ${JSON.stringify(slots.rows)}; run's stderr: ${(run as ChildProcess & { lastStderr: () => string }).lastStderr()}`,
        );
      }
      await stopRun(run);
      run = null;
    } finally {
      writing = false;
      await writes;
      await writer.end();
    }
    expect(w).toBeGreaterThan(20);
    // Every value of every row equal, as the server's text.
    for (const t of ['t', 'm']) expect(await rows(dst, t), `app.${t}`).toEqual(await rows(src, t));
    const big = await dst.query('SELECT length(big) AS n FROM app.t WHERE id = 1');
    expect(Number(big.rows[0]?.['n'])).toBe(32768 * 32);
    // Exactly once: each marker's insert applied (committed) once; ordinary triggers never fired.
    const counts = await dst.query('SELECT w, count(*)::int AS n FROM app.applied_markers GROUP BY w ORDER BY w');
    expect(counts.rows.map((r) => Number(r['w']))).toEqual(Array.from({ length: w }, (_, i) => i + 1));
    // A baseline redone after a kill clears each table at its first chunk (rows an unfinished baseline left must
    // not stay) and inserts again: a marker an earlier, unfinished baseline carried may fire the trigger once more
    // per such baseline (if its chunk was applied before the kill). Every other marker: exactly once.
    const redone = new Map<number, number>(); // marker → how many unfinished copies of app.m carried it
    let carried = new Set<number>();
    let unit = ''; // the open baseline unit of app.m ('' after a commit)
    for (const e of await journalEntries(join(dir, 'journal'))) {
      if (e.kind === 'commit') unit = '';
      if (e.kind !== 'rows' || e.table !== 'm' || !e.txId.startsWith('baseline:')) continue;
      if (e.txId.endsWith(':0') && unit !== e.txId) {
        // A first chunk of app.m: a new copy; the markers of the one before were carried by an unfinished one.
        for (const m of carried) redone.set(m, (redone.get(m) ?? 0) + 1);
        carried = new Set();
      }
      unit = e.txId;
      for (const r of e.rows) carried.add(Number(r.after?.[0]));
    }
    const wrong = counts.rows.filter((r) => {
      const n = Number(r['n']);
      return n < 1 || n > 1 + (redone.get(Number(r['w'])) ?? 0);
    });
    expect(wrong, `markers redone by a later baseline: ${redone.size}`).toEqual([]);
    expect((await dst.query('SELECT count(*)::int AS n FROM app.ordinary_fired')).rows[0]?.['n']).toBe('0');
    // The stored position is the journal's last commit.
    const head = await lastCommit(join(dir, 'journal'));
    const stored = await postgresTarget.readStored(targetSection(), 'pgsrc');
    expect(stored.error).toBeUndefined();
    expect(stored.stored?.state?.seq).toBe(head?.seq);
    expect(positionToJson(stored.stored!.state!.position!)).toEqual(positionToJson(head!.position));
    // Verify: equal now; a row changed on the target alone is found by its key.
    const section = { kind: 'postgres', name: 'pgsrc', host: '127.0.0.1', port: SRC.port, ...CAPTURE_USER };
    const vsrc = { ...section, database: 'appdb', publication: 'tm_pub', include: ['*.*'], exclude: [] };
    const log = pino({ level: 'silent' });
    const v1 = await postgresTarget.verify({ source: vsrc, target: targetSection(), log });
    expect(v1.tables.find((t) => t.table === 't')?.chunks).toBeGreaterThan(5);
    expect(v1.tables.map((t) => [t.table, t.equal, t.rows === t.replicaRows])).toEqual([
      ['m', true, true],
      ['t', true, true],
    ]);
    await dst.query(`UPDATE app.t SET amt = amt + 0.0000000001 WHERE id = 7`);
    const v2 = await postgresTarget.verify({
      source: vsrc,
      target: targetSection(),
      log,
      tables: [{ schema: 'app', table: 't' }],
    });
    expect(v2.equal).toBe(false);
    expect(v2.tables[0]?.differences).toEqual([{ pk: ['7'], key: '7', kind: 'changed' }]);
  }, 300_000);
});

/** PostgreSQL on both sides of the engine contract: a source database and a target database per target name. */
function pgContractEngine(): ContractEngine & { close(): Promise<void> } {
  const shape = `CREATE SCHEMA app;
    CREATE TABLE app.acct (id int PRIMARY KEY, bal numeric(20,6) NOT NULL, ts timestamptz, tags text[]);
    CREATE TABLE app.ev (a int, b text, note jsonb, PRIMARY KEY (a, b));`;
  let writer: pg.Client | null = null;
  return {
    source: postgresSource,
    target: postgresTarget,
    async createSource() {
      const a = await pgAdmin(SRC.port);
      await a.query('CREATE DATABASE contract');
      await a.end();
      const b = await pgAdmin(DST.port);
      for (const db of ['near', 'far']) await b.query(`CREATE DATABASE ${db}`);
      await b.end();
      writer = await superuserClient(SRC.port, 'contract');
      await writer.query(`${shape}
        ALTER TABLE app.acct REPLICA IDENTITY FULL; ALTER TABLE app.ev REPLICA IDENTITY FULL;
        CREATE PUBLICATION tm_contract FOR TABLE app.acct, app.ev;
        GRANT USAGE ON SCHEMA app TO tidemark_cap; GRANT SELECT ON ALL TABLES IN SCHEMA app TO tidemark_cap;`);
      for (const db of ['near', 'far']) {
        const c = await superuserClient(DST.port, db);
        await c.query(`${shape}
          GRANT CREATE ON DATABASE ${db} TO tidemark_apply; GRANT USAGE ON SCHEMA app TO tidemark_apply;
          GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app TO tidemark_apply;`);
        await c.end();
      }
      return { port: SRC.port, ...CAPTURE_USER, database: 'contract', publication: 'tm_contract', slot: 'tm_contract' };
    },
    async write(_source, n) {
      const c = writer!;
      await c.query('BEGIN');
      await c.query(`INSERT INTO app.acct VALUES ($1::int, $1::int / 7.0, now(), ARRAY['t' || $1::int])`, [n]);
      if (n > 1)
        await c.query('UPDATE app.acct SET bal = bal + 0.000001 * $1::int, tags = tags || $2::text WHERE id = $3', [
          n,
          `u${n}`,
          n - 1,
        ]);
      if (n > 3 && n % 4 === 0) await c.query('DELETE FROM app.acct WHERE id = $1', [n - 3]);
      await c.query(
        `INSERT INTO app.ev VALUES ($1, 'e', jsonb_build_object('n', $2::int))
         ON CONFLICT (a, b) DO UPDATE SET note = EXCLUDED.note`,
        [n % 5, n],
      );
      await c.query('COMMIT');
    },
    targetKeys: (_dir, name) => ({ port: DST.port, ...APPLY_USER, database: name }),
    async close() {
      await writer?.end().catch(() => {});
    },
  };
}

describe('engine contract with PostgreSQL source and target', () => {
  it('passes runEngineContract: baseline, stream, restart, ship to a standby site, verify EQUAL', async () => {
    const engine = pgContractEngine();
    try {
      const r = await runEngineContract(engine, { dir: join(dir, 'contract'), port: 5462, tls: false });
      expect(r.verify.targets.map((t) => t.name).sort()).toEqual(['far', 'near']);
      expect(r.journalHeadSeq).toBeGreaterThan(0n); // how many seqs depends on how much the baseline took (timing)
    } finally {
      await engine.close();
    }
  }, 180_000);
});

describe('the applier on its own (apply/postgres/applier.ts)', () => {
  const base = { source: 'direct', txId: 'x' };
  const col = (name: string, type: string) => ({ name, type });
  const commit = (seq: bigint, phase: 'baseline-end' | 'stream'): JournalItem => ({
    lsn: seq,
    entry: {
      ...base,
      kind: 'commit',
      seq,
      position: sequencePosition('postgres', 1000n + seq),
      commitTimeUs: 1n,
      captureTimeUs: 1n,
      rowCount: 1n,
      phase,
    },
  });
  const marker = (seq: bigint, w: number): JournalItem => ({
    lsn: seq,
    entry: {
      ...base,
      kind: 'rows',
      seq,
      schema: 'app',
      table: 'm',
      op: 'insert',
      columns: [col('w', 'int4'), col('at', 'timestamptz')],
      pk: ['w'],
      rows: [{ before: null, after: [String(w), '2026-12-06 12:00:00.000001+00'] }],
    },
  });
  const items = async function* (list: JournalItem[]) {
    yield* list;
  };
  const applyOnce = async (list: JournalItem[]) => {
    const a = await postgresTarget.applier({
      target: targetSection(),
      source: 'direct',
      log: pino({ level: 'silent' }),
    });
    try {
      await a.open();
      await a.run(items(list), {});
      return a.state;
    } finally {
      await a.close();
    }
  };
  const failure = (p: Promise<unknown>) =>
    p.then(
      () => {
        throw new Error('expected a failure');
      },
      (e: unknown) => e as TidemarkError,
    );

  it('skips what it stored, refuses a 0-row update and DDL, needs the right to set session_replication_role', async () => {
    const list = [commit(1n, 'baseline-end'), marker(2n, 900_001), commit(3n, 'stream')];
    expect((await applyOnce(list))?.seq).toBe(3n);
    expect((await applyOnce(list))?.seq).toBe(3n); // delivered again after a restart: skipped, no duplicate key
    const seen = await dst.query('SELECT count(*)::int AS n FROM app.applied_markers WHERE w = 900001');
    expect(seen.rows[0]?.['n']).toBe('1');

    const update: JournalItem = {
      lsn: 4n,
      entry: {
        ...(marker(4n, 900_002).entry as RowsEntry),
        op: 'update',
        rows: [{ before: ['900002', null], after: ['900002', null] }],
      },
    };
    const diverged = await failure(applyOnce([update, commit(5n, 'stream')]));
    expect(diverged.code).toBe('APPLY_DIVERGED');
    expect(diverged.message).toContain('update of app.m at seq 4');
    expect(diverged.message).toContain('no such row on the replica');
    const ddl: JournalItem = {
      lsn: 4n,
      entry: { ...base, kind: 'ddl', seq: 4n, schema: 'app', tables: [], sql: 'ALTER TABLE app.m ADD c int' },
    };
    const refused = await failure(applyOnce([ddl, commit(5n, 'stream')]));
    expect(refused.code).toBe('APPLY_FAILED');
    expect(refused.message).toContain('cannot be applied to a PostgreSQL target');
    expect((await postgresTarget.readStored(targetSection(), 'direct')).stored?.state?.seq).toBe(3n);

    await dst.query('REVOKE SET ON PARAMETER session_replication_role FROM tidemark_apply');
    try {
      const denied = await failure(applyOnce([marker(4n, 900_003), commit(5n, 'stream')]));
      expect(denied.code).toBe('PG_PRIVILEGE');
      expect(denied.message).toContain('session_replication_role');
    } finally {
      await dst.query('GRANT SET ON PARAMETER session_replication_role TO tidemark_apply');
    }
    expect((await dst.query('SELECT 1 FROM app.m WHERE w = 900003')).rows).toEqual([]);

    // A rough figure (not asserted): 1000 single-row transactions, each with its position, one at a time.
    const many: JournalItem[] = [];
    for (let i = 0; i < 1000; i++)
      many.push(marker(4n + 2n * BigInt(i), 910_000 + i), commit(5n + 2n * BigInt(i), 'stream'));
    const t0 = performance.now();
    expect((await applyOnce(many))?.seq).toBe(2003n);
    console.info(`apply/postgres: 1000 single-row transactions in ${Math.round(performance.now() - t0)} ms`);
  }, 60_000);

  it('marks its writes with a replication origin: a capture of the target skips them, takes a local write', async () => {
    await dst.query(`ALTER TABLE app.m REPLICA IDENTITY FULL;
      CREATE PUBLICATION tm_back FOR TABLE app.m;
      GRANT USAGE ON SCHEMA app TO tidemark_cap;
      GRANT SELECT ON app.m TO tidemark_cap;`);
    const back = pgSourceSchema.parse({
      kind: 'postgres',
      name: 'back',
      port: DST.port,
      user: CAPTURE_USER.user,
      database: 'appdb',
      publication: 'tm_back',
      slot: 'tm_back',
    }) as PgSourceSection;
    Object.defineProperty(back, 'password', { value: CAPTURE_USER.password, enumerable: false });
    const sink = new MemorySink();
    const cap = await postgresSource.capture({
      source: back,
      sink,
      resume: null,
      log: memoryLogger('info').log,
      forceBaseline: false,
    });
    const ac = new AbortController();
    const running = cap.run(ac.signal);
    try {
      for (let i = 0; cap.status().phase !== 'streaming'; i++) {
        if (i > 600) throw new Error('the capture of the target did not start streaming');
        await new Promise((r) => setTimeout(r, 50));
      }
      // Three source transactions of source "loop", applied (grouped) by tidemark; then a write of the target's own.
      const loop = (seq: bigint, w: number): JournalItem[] => [
        { ...marker(seq, w), entry: { ...(marker(seq, w).entry as RowsEntry), source: 'loop' } },
        { ...commit(seq + 1n, 'stream'), entry: { ...commit(seq + 1n, 'stream').entry, source: 'loop' } },
      ];
      // A wait long enough that the three are one group however slow the machine (the group ends with the items).
      const target = { ...targetSection(), batch: { max_transactions: 500, max_rows: 20_000, max_wait_ms: 10_000 } };
      Object.defineProperty(target, 'password', { value: APPLY_USER.password, enumerable: false });
      const a = await postgresTarget.applier({ target, source: 'loop', log: pino({ level: 'silent' }) });
      try {
        await a.open();
        const commits: bigint[] = [];
        await a.run(items([...loop(1n, 950_001), ...loop(3n, 950_002), ...loop(5n, 950_003)]), {
          onApplied: (st) => {
            commits.push(st.seq);
          },
        });
        expect(commits).toEqual([6n]); // one target transaction for the three source transactions
        expect(a.state?.seq).toBe(6n);
      } finally {
        await a.close();
      }
      await dst.query('INSERT INTO app.m VALUES (950100, now())');
      const markers = () =>
        rowsEntries(sink.committed(), 'm')
          .filter((e) => !e.txId.startsWith('baseline'))
          .flatMap((e) => e.rows.map((r) => Number(r.after?.[0])));
      await sink.waitFor(() => markers().includes(950_100), 30_000);
      expect(markers()).toEqual([950_100]);
      const origin = await dst.query(
        `SELECT o.roname, s.remote_lsn::text AS lsn FROM pg_replication_origin o
           JOIN pg_replication_origin_status s ON s.local_id = o.roident WHERE o.roname = 'tidemark_loop/appdb'`,
      );
      expect(origin.rows).toEqual([{ roname: 'tidemark_loop/appdb', lsn: '0/3EE' }]); // position of seq 6: 1000 + 6
    } finally {
      ac.abort();
      await running.catch(() => {});
    }
    await dst.query(
      'REVOKE EXECUTE ON FUNCTION pg_catalog.pg_replication_origin_session_setup(text) FROM tidemark_apply',
    );
    try {
      const denied = await failure(applyOnce([marker(2004n, 950_200), commit(2005n, 'stream')]));
      expect(denied.code).toBe('PG_PRIVILEGE');
      expect(denied.message).toContain('GRANT EXECUTE ON FUNCTION pg_catalog.pg_replication_origin_create(text)');
    } finally {
      await dst.query(
        'GRANT EXECUTE ON FUNCTION pg_catalog.pg_replication_origin_session_setup(text) TO tidemark_apply',
      );
    }
  }, 120_000);

  it('a baseline taken again clears each table at its first chunk: rows the new snapshot lacks do not stay', async () => {
    const unit = (seq: bigint, chunk: string, ws: number[]): JournalItem[] => [
      {
        lsn: seq,
        entry: {
          ...(marker(seq, 0).entry as RowsEntry),
          source: 'rebase',
          txId: `baseline:app.m:${chunk}`,
          rows: ws.map((w) => ({ before: null, after: [String(w), '2026-12-06 12:00:00.000001+00'] })),
        },
      },
      {
        lsn: seq + BigInt(ws.length),
        entry: {
          ...(commit(seq + BigInt(ws.length), 'baseline-end').entry as CommitEntry),
          source: 'rebase',
          txId: `baseline:app.m:${chunk}`,
          phase: 'baseline',
        },
      },
    ];
    const apply = async (list: JournalItem[]) => {
      const a = await postgresTarget.applier({
        target: targetSection(),
        source: 'rebase',
        log: pino({ level: 'silent' }),
      });
      try {
        await a.open();
        await a.run(items(list), {});
      } finally {
        await a.close();
      }
    };
    const ws = async () =>
      (await dst.query('SELECT w FROM app.m WHERE w >= 970000 ORDER BY w')).rows.map((r) => Number(r['w']));
    // An unfinished baseline: two chunks of app.m applied, then the capture stopped.
    await apply([...unit(1n, '0', [970_001, 970_002, 970_003]), ...unit(5n, '1', [970_004])]);
    expect(await ws()).toEqual([970_001, 970_002, 970_003, 970_004]);
    // Taken again from a new snapshot in which 970002 and 970004 were deleted and 970005 inserted.
    await apply(unit(7n, '0', [970_001, 970_003, 970_005]));
    expect(await ws()).toEqual([970_001, 970_003, 970_005]);
  }, 60_000);
});

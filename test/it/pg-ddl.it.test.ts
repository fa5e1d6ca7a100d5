/**
 * PostgreSQL DDL mid-stream, PostgreSQL → PostgreSQL through the real runtime (`tidemark run` in a child process),
 * source on port 5470, target on 5471 (issue #14 scope 4):
 *   - with tidemark's event triggers (capture/postgres/ddl-triggers.sql) installed on the source, while two writers
 *     keep inserting, updating and deleting: ADD COLUMN (with a default), DROP COLUMN, RENAME COLUMN, CREATE TABLE
 *     (then written to), TRUNCATE, DROP TABLE; afterwards every row of the target equals the source's (values as
 *     the server's text, column names included), the dropped table is gone on both, and verify says equal;
 *   - the fallback: the event triggers dropped, `tidemark run` restarted, ADD COLUMN … DEFAULT under writes is
 *     turned into synthesized DDL from the Relation messages; the target equals the source again, verify equal;
 *     and with `source.ddl: event-triggers` the missing triggers are a PREREQUISITE error naming the file to run.
 * The apply role owns the target's schema and tables (ALTER/DROP/TRUNCATE need it) and is not a superuser.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { postgresTarget } from '../../apply/postgres/adapter.ts';
import type { PgTargetSection } from '../../apply/postgres/config.ts';
import { postgresSource } from '../../capture/postgres/adapter.ts';
import { pgSourceSchema } from '../../capture/postgres/config.ts';
import type { TidemarkError } from '../../core/errors.ts';
import { JournalReader, readEntries } from '../../journal/index.ts';
import { REPO_ROOT } from '../fixtures/mariadb.ts';
import { APPLY_USER, CAPTURE_USER, startPgPair, superuserClient, stopPostgres } from '../fixtures/postgres.ts';
import { startRun, stopRun } from '../fixtures/topology.ts';

const SRC = { name: 'pgddl-src', port: 5470 };
const DST = { name: 'pgddl-dst', port: 5471 };
/** The `source:` section (capture role, publication of schema app). */
const SOURCE = {
  kind: 'postgres',
  name: 'pgsrc',
  port: SRC.port,
  ...CAPTURE_USER,
  database: 'appdb',
  publication: 'tm_pub',
};
const TRIGGERS = readFileSync(resolve(REPO_ROOT, 'capture/postgres/ddl-triggers.sql'), 'utf8');

const TABLES = `
  CREATE TABLE app.a (id int PRIMARY KEY, v text NOT NULL, n int, d timestamptz);
  CREATE TABLE app.b (id int PRIMARY KEY, v text);`;

let dir = '';
let run: ChildProcess | null = null;
let src: pg.Client;
let dst: pg.Client;
const superuser = (port: number) => superuserClient(port, 'appdb');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  ({ src, dst } = await startPgPair(SRC, DST, 'appdb'));
  await src.query(TRIGGERS);
  await src.query(`CREATE SCHEMA app; ${TABLES}
    ALTER TABLE app.a REPLICA IDENTITY FULL; ALTER TABLE app.b REPLICA IDENTITY FULL;
    INSERT INTO app.a SELECT g, 'seed' || g, g, now() FROM generate_series(1, 300) g;
    INSERT INTO app.b SELECT g, 'b' || g FROM generate_series(1, 100) g;
    CREATE PUBLICATION tm_pub FOR TABLES IN SCHEMA app;
    GRANT USAGE ON SCHEMA app TO tidemark_cap; GRANT SELECT ON ALL TABLES IN SCHEMA app TO tidemark_cap;
    ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO tidemark_cap;`);
  // The target: schema and tables owned by the apply role, which may set session_replication_role.
  await dst.query(`CREATE SCHEMA app AUTHORIZATION tidemark_apply;
    GRANT SET ON PARAMETER session_replication_role TO tidemark_apply;
    GRANT CREATE ON DATABASE appdb TO tidemark_apply;
    SET ROLE tidemark_apply; ${TABLES} RESET ROLE;`);
  dir = mkdtempSync(join(tmpdir(), 'tm-pg-ddl-'));
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
  const t = { kind: 'postgres' as const, name: 'pgdst', host: '127.0.0.1', port: DST.port, user: APPLY_USER.user };
  Object.assign(t, { database: 'appdb', connect_timeout_ms: 10_000, verify: { chunk_rows: 50 } });
  Object.defineProperty(t, 'password', { value: APPLY_USER.password, enumerable: false });
  return t as unknown as PgTargetSection;
}

const rows = async (c: pg.Client, table: string) =>
  (await c.query(`SELECT row_to_json(tm_row)::text AS j FROM app.${table} tm_row ORDER BY id`)).rows.map((r) =>
    String(r['j']),
  );
const tableNames = async (c: pg.Client) =>
  (await c.query("SELECT tablename FROM pg_tables WHERE schemaname = 'app' ORDER BY 1")).rows.map(
    (r) => r['tablename'],
  );

/** Writers on app.a and app.b (and app.c while `c` is on) until stopped; ids from one counter. */
function writers() {
  const state = { on: true, c: false, next: 1000, error: undefined as unknown, done: [] as Promise<void>[] };
  const loop = async (body: (w: pg.Client, id: number) => Promise<void>) => {
    const w = await superuser(SRC.port);
    try {
      while (state.on) {
        const id = ++state.next;
        await w.query('BEGIN');
        await body(w, id);
        await w.query('COMMIT');
        await sleep(3);
      }
    } catch (err) {
      state.error ??= err;
    } finally {
      await w.end();
    }
  };
  state.done.push(
    loop(async (w, id) => {
      await w.query("INSERT INTO app.a (id, v) VALUES ($1::int, 'w' || $1::text)", [id]);
      await w.query("UPDATE app.a SET v = v || '+' WHERE id = $1", [id - 7]);
      if (id % 5 === 0) await w.query('DELETE FROM app.a WHERE id = $1', [id - 3]);
    }),
    loop(async (w, id) => {
      await w.query("INSERT INTO app.b VALUES ($1::int, 'w' || $1::text)", [id]);
      if (id % 3 === 0) await w.query('DELETE FROM app.b WHERE id = $1', [id - 2]);
      if (state.c) {
        await w.query("INSERT INTO app.c VALUES ($1::int, $1::text || ' ü')", [id]);
        await w.query("UPDATE app.c SET v = v || '!' WHERE id = $1", [id - 4]);
      }
    }),
  );
  return {
    state,
    async stop() {
      state.on = false;
      await Promise.all(state.done);
      if (state.error) throw state.error;
    },
  };
}

/** Waits until the target holds exactly the source's rows of `tables` (and the same table list). */
async function caughtUp(tables: string[], what: string): Promise<void> {
  const deadline = Date.now() + 90_000; // generous: a loaded CI machine runs two integration files at once
  let last = '';
  while (Date.now() < deadline) {
    let same = JSON.stringify(await tableNames(dst)) === JSON.stringify(await tableNames(src));
    for (const t of tables) if (same) same = JSON.stringify(await rows(dst, t)) === JSON.stringify(await rows(src, t));
    if (same) return;
    if (run?.exitCode !== null) {
      last = (run as ChildProcess & { lastStderr: () => string }).lastStderr();
      break;
    }
    await sleep(200);
  }
  throw new Error(`${what}: target not equal to the source in time; run: ${last || 'still running'}`);
}

/** The statements of the journal's DDL entries, in order. */
async function journalDdl(): Promise<string[]> {
  const out: string[] = [];
  for await (const { entry } of readEntries(
    new JournalReader({ dir: join(dir, 'journal'), fromLsn: 1n, follow: false }),
  )) {
    if (entry.kind === 'ddl') out.push(entry.sql);
  }
  return out;
}

async function verifyEqual(): Promise<void> {
  const source = { kind: 'postgres', name: 'pgsrc', host: '127.0.0.1', port: SRC.port, ...CAPTURE_USER };
  const vsrc = { ...source, database: 'appdb', publication: 'tm_pub', include: ['*.*'], exclude: [] };
  const v = await postgresTarget.verify({ source: vsrc, target: targetSection(), log: pino({ level: 'silent' }) });
  expect(v.tables.map((t) => [t.table, t.equal])).toEqual(v.tables.map((t) => [t.table, true]));
  expect(v.equal).toBe(true);
}

describe('PostgreSQL DDL mid-stream', () => {
  it('event-trigger DDL and TRUNCATE under writes, then the Relation fallback: target equal, verify equal', async () => {
    const config = join(dir, 'tidemark.yaml');
    writeFileSync(
      config,
      stringify({
        source: { ...SOURCE, slot: 'tm_ddl' },
        journal: { dir: join(dir, 'journal') },
        targets: [{ kind: 'postgres', name: 'pgdst', port: DST.port, ...APPLY_USER, database: 'appdb' }],
        rollback: { index: false },
        log: { level: 'warn' },
      }),
    );
    const t0 = performance.now();
    run = startRun(config);
    const w = writers();
    try {
      // The DDL below must come after the baseline's snapshot (else the baseline already has its shape and the
      // target never gets the DDL): wait for the seed rows on the target, not a fixed time (a loaded machine
      // starts `tidemark run` in 1-3 s).
      for (let i = 0; ; i++) {
        const n = await dst.query(
          'SELECT (SELECT count(*) FROM app.a WHERE id <= 300) + (SELECT count(*) FROM app.b WHERE id <= 100) AS n',
        );
        if (Number(n.rows[0]?.['n']) === 400) break;
        if (i > 600) throw new Error('the baseline did not reach the target in 60 s');
        await sleep(100);
      }
      const ddl = async (sql: string) => {
        await src.query(sql);
        await sleep(400);
      };
      await ddl("ALTER TABLE app.a ADD COLUMN w int NOT NULL DEFAULT 7, ADD COLUMN note text DEFAULT 'n/a'");
      await ddl("COMMENT ON TABLE app.a IS 'no Relation message follows'");
      await ddl('ALTER TABLE app.a DROP COLUMN d');
      await ddl('ALTER TABLE app.a RENAME COLUMN n TO n2');
      await ddl('CREATE TABLE app.c (id int PRIMARY KEY, v text)');
      await ddl('ALTER TABLE app.c REPLICA IDENTITY FULL');
      await src.query('SET search_path TO app'); // an unqualified name: the target resolves it in "app" too
      await ddl('ALTER TABLE c ADD COLUMN x int DEFAULT 3');
      await src.query('RESET search_path');
      w.state.c = true;
      await sleep(800);
      await ddl('TRUNCATE app.b');
      await ddl('CREATE TABLE app.gone (id int PRIMARY KEY)');
      await ddl('INSERT INTO app.gone SELECT generate_series(1, 10)');
      await ddl('DROP TABLE app.gone');
      await sleep(500);
    } finally {
      await w.stop();
    }
    await caughtUp(['a', 'b', 'c'], 'event triggers');
    expect(await tableNames(dst)).toEqual(['a', 'b', 'c']);
    const cols = await dst.query(
      "SELECT string_agg(attname, ',' ORDER BY attnum) AS c FROM pg_attribute WHERE attrelid = 'app.a'::regclass AND attnum > 0 AND NOT attisdropped",
    );
    expect(cols.rows[0]?.['c']).toBe('id,v,n2,w,note');
    expect((await rows(dst, 'c')).length).toBeGreaterThan(5);
    expect((await rows(dst, 'b')).every((r) => Number(JSON.parse(r).id) > 1000)).toBe(true); // truncated, refilled
    await verifyEqual();
    // The journal holds the DDL as statements of its transactions, TRUNCATE among them.
    const ddlSql = await journalDdl();
    expect(ddlSql).toContain('TRUNCATE TABLE "app"."b"');
    expect(ddlSql).toContain('ALTER TABLE app.a RENAME COLUMN n TO n2');
    expect(ddlSql).toContain('DROP TABLE app.gone');
    expect(ddlSql).toContain('ALTER TABLE c ADD COLUMN x int DEFAULT 3');
    console.info(`pg-ddl: event-trigger phase ${Math.round(performance.now() - t0)} ms, ${ddlSql.length} DDL entries`);

    // ── the fallback: no event triggers ──
    await stopRun(run);
    await src.query('DROP EVENT TRIGGER tidemark_ddl_end; DROP EVENT TRIGGER tidemark_ddl_drop');
    run = startRun(config);
    const w2 = writers();
    w2.state.next = 100_000;
    try {
      await sleep(2000); // streaming, app.a's Relation message seen in this session
      await src.query("ALTER TABLE app.a ADD COLUMN f text DEFAULT 'fx'");
      await sleep(1000);
    } finally {
      await w2.stop();
    }
    await caughtUp(['a', 'b', 'c'], 'fallback');
    const after = await journalDdl();
    expect(after.slice(ddlSql.length)).toEqual([
      `ALTER TABLE "app"."a" ADD COLUMN "f" text DEFAULT ('{fx}'::text[])[1]`,
      `ALTER TABLE "app"."a" ALTER COLUMN "f" SET DEFAULT 'fx'::text`,
    ]);
    await verifyEqual();
    await stopRun(run);
    run = null;
    // source.ddl: event-triggers makes them a prerequisite, naming the file to run.
    const strict = pgSourceSchema.parse({ ...SOURCE, ddl: 'event-triggers' });
    const refused = await postgresSource.preflight(strict).then(
      () => undefined,
      (e: unknown) => e as TidemarkError,
    );
    expect(refused?.code).toBe('PREREQUISITE');
    expect(refused?.message).toContain('-f capture/postgres/ddl-triggers.sql');
  }, 300_000);
});

/**
 * Rewind, forward and undo on a PostgreSQL replica (rollback/pg-*.ts), through the real runtime: a source
 * PostgreSQL 15 (port 5475) captured by `tidemark run` (a child process) into the journal, applied to a target
 * PostgreSQL 15 (port 5476) as the least-privilege apply role. The table carries timestamp(6), timestamptz,
 * numeric(38,10), jsonb, json, bytea, int[], text[], uuid, interval, with edge values (infinity, NaN, empty and
 * 256-byte bytea, json text with duplicate keys and spaces, negative intervals, quotes and backslashes) and NULLs.
 *   - the target's state (every row's row_to_json text and an md5 per table) is recorded after each of five
 *     writer transactions; rewind --steps and --to-time take the target back to recorded states exactly, apply
 *     stays paused while held (a new source transaction is not applied), forward --steps / --to-time / --to-head
 *     forward again (to the source's rows; the hold is released and apply resumes);
 *   - a rewind --sql script run by `psql -v ON_ERROR_STOP=1` gives the same state; a row changed behind tidemark's
 *     back makes the rewind fail REWIND_GUARD and the script stop, a row inserted behind its back makes the server
 *     refuse the forward's INSERT (named), a table in identity_full_opt_out is refused — nothing changed each time;
 *   - undo of a transaction whose row was changed later: nocascade refused (REWIND_CONFLICT, nothing changed),
 *     nonconflict (executed, and as a psql script) undoes only the untouched row, cascade undoes the later one too.
 */
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { APPLY_USER, CAPTURE_USER, startPgPair, superuserClient, stopPostgres } from '../fixtures/postgres.ts';
import { cliOk, runCli, startRun, stopRun } from '../fixtures/topology.ts';

const SRC = { name: 'pgrw-src', port: 5475 };
const DST = { name: 'pgrw-dst', port: 5476 };
const PSQL = '/usr/lib/postgresql/15/bin/psql';

const TABLES = `
  CREATE SCHEMA app;
  CREATE TABLE app.t (id int PRIMARY KEY, n int NOT NULL, ts timestamp(6), tz timestamptz, amt numeric(38,10),
    doc jsonb, js json, bin bytea, ints int[], txts text[], u uuid, iv interval);
  CREATE TABLE app.m (w int PRIMARY KEY, at timestamptz NOT NULL);`;

/** Edge values per column, the seed's row g taking entry g % length of each (the source's text for each type). */
const EDGES = {
  ts: ['2026-12-06 12:00:00.000001', 'infinity', '-infinity', '1999-01-08 04:05:06', null],
  tz: ['2026-12-06 12:00:00.123456+05:30', 'infinity', '2000-02-29 23:59:59.999999-08', null],
  amt: ['123456789012345678901234567.0123456789', '-0.0000000001', 'NaN', '0', null],
  doc: ['{"a": [1, "x", null], "ü": "\\u00e9", "n": 1.50}', '{}', '[]', '"s"', null],
  js: ['{"a":1,  "a":2}', '[ 1 , 2 ]', null],
  bin: ['\\x', `\\x${Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('hex')}`, null],
  ints: ['{1,-1,NULL}', '{}', null],
  txts: ['{"a b","q\\"u",NULL,"back\\\\slash","{,}"}', '{}', null],
  iv: ['-1 days +02:03:04.000005', '1 year 2 mons', '00:00:00.000001', null],
};
const SEED = 40;
const INSERT = `INSERT INTO app.t VALUES ($1, 0, $2::timestamp(6), $3::timestamptz, $4::numeric(38,10), $5::jsonb,
  $6::json, $7::bytea, $8::int[], $9::text[], gen_random_uuid(), $10::interval)`;

function seedRow(g: number): (string | null)[] {
  const pick = (list: readonly (string | null)[]) => list[g % list.length] ?? null;
  const e = EDGES;
  return [
    `${g}`,
    pick(e.ts),
    pick(e.tz),
    pick(e.amt),
    pick(e.doc),
    pick(e.js),
    pick(e.bin),
    pick(e.ints),
    pick(e.txts),
    pick(e.iv),
  ];
}

let dir = '';
let config = '';
let run: ChildProcess | null = null;
let src: pg.Client;
let dst: pg.Client;

const _superuser = (port: number) => superuserClient(port, 'appdb');

/** The rows of both tables as text, and an md5 per table: what "the state" of a server is here. */
interface State {
  readonly rows: Record<string, string[]>;
  readonly md5: Record<string, string>;
}

async function state(c: pg.Client): Promise<State> {
  const rows: Record<string, string[]> = {};
  const md5: Record<string, string> = {};
  for (const t of ['t', 'm']) {
    const r = await c.query(`SELECT row_to_json(x)::text AS j FROM app.${t} x ORDER BY 1`);
    rows[t] = r.rows.map((x) => String(x['j']));
    const h = await c.query(`SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) AS h FROM app.${t} x`);
    md5[t] = String(h.rows[0]?.['h']);
  }
  return { rows, md5 };
}

/** Writer transaction w: a marker, an update of several typed columns, an insert, a delete (every 2nd), a key change. */
async function writeTx(w: number): Promise<void> {
  await src.query('BEGIN');
  await src.query('INSERT INTO app.m VALUES ($1, now())', [w]);
  await src.query(
    `UPDATE app.t SET n = n + 1, amt = amt * -3 / 7, tz = tz + interval '0.000001 s', ints = ints || $2::int,
       doc = doc || jsonb_build_object('w', $2::int), js = json_build_object('w', $2::int, 's', 'a  b'),
       iv = iv + interval '1 mon 1 us', txts = txts || $3::text, bin = NULL WHERE id = $1`,
    [w, w, `w'${w}\\`],
  );
  await src.query(
    `INSERT INTO app.t (id, n, ts, bin, u, doc) VALUES ($1, $2, '2026-12-06 00:00:00.000001'::timestamp + $2::int * interval '1 s',
       '\\x00ff'::bytea || int4send($2::int), gen_random_uuid(), '{"ü": "\\u00e9"}')`,
    [100 + w, w],
  );
  if (w % 2 === 0) await src.query('DELETE FROM app.t WHERE id = $1', [10 + w]);
  await src.query('UPDATE app.t SET id = id + 1000 WHERE id = $1', [20 + w]); // key change
  await src.query('COMMIT');
}

async function waitFor(what: string, ok: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await ok().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  const stderr = run ? (run as ChildProcess & { lastStderr: () => string }).lastStderr() : '';
  throw new Error(`timed out waiting for ${what}; run's stderr: ${stderr}`);
}

const hasMarker = (w: number) => async () =>
  (await dst.query('SELECT 1 FROM app.m WHERE w = $1', [w])).rows.length === 1;

async function held(): Promise<string | null> {
  return ((await dst.query('SELECT hold FROM tidemark.applied')).rows[0]?.['hold'] as string | null) ?? null;
}

interface LogTx {
  tx_id: string;
  commit_time_us: string;
  seq: string;
}

async function txLog(): Promise<LogTx[]> {
  const out = await cliOk(config, ['log', '--json']);
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogTx);
}

function psql(file: string): { code: number; out: string } {
  try {
    const out = execFileSync(
      PSQL,
      [
        '-X',
        '-q',
        '-v',
        'ON_ERROR_STOP=1',
        '-h',
        '127.0.0.1',
        '-p',
        String(DST.port),
        '-U',
        APPLY_USER.user,
        '-d',
        'appdb',
        '-f',
        file,
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PGPASSWORD: APPLY_USER.password } },
    );
    return { code: 0, out };
  } catch (err) {
    const e = err as { status?: number; stderr?: string; stdout?: string };
    return { code: e.status ?? -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

beforeAll(async () => {
  ({ src, dst } = await startPgPair(SRC, DST, 'appdb'));
  await src.query(`${TABLES}
    ALTER TABLE app.t REPLICA IDENTITY FULL;
    ALTER TABLE app.m REPLICA IDENTITY FULL;
    CREATE PUBLICATION tm_pub FOR TABLE app.t, app.m;
    GRANT USAGE ON SCHEMA app TO tidemark_cap;
    GRANT SELECT ON ALL TABLES IN SCHEMA app TO tidemark_cap;
`);
  for (let g = 1; g <= SEED; g++) await src.query(INSERT, seedRow(g));
  await dst.query(`${TABLES}
    GRANT SET ON PARAMETER session_replication_role TO tidemark_apply;
    GRANT CREATE ON DATABASE appdb TO tidemark_apply;
    GRANT USAGE ON SCHEMA app TO tidemark_apply;
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app TO tidemark_apply;`);
  dir = mkdtempSync(join(tmpdir(), 'tm-pg-rewind-'));
  config = join(dir, 'tidemark.yaml');
  writeFileSync(
    config,
    stringify({
      source: {
        kind: 'postgres',
        name: 'pgsrc',
        port: SRC.port,
        ...CAPTURE_USER,
        database: 'appdb',
        publication: 'tm_pub',
        slot: 'tm_rewind',
      },
      journal: { dir: join(dir, 'journal') },
      targets: [{ kind: 'postgres', name: 'pgdst', port: DST.port, ...APPLY_USER, database: 'appdb' }],
      rollback: { index: false },
      log: { level: 'warn' },
    }),
  );
  run = startRun(config);
  await waitFor(
    'the baseline on the target',
    async () => (await dst.query('SELECT count(*)::int AS n FROM app.t')).rows[0]?.['n'] === `${SEED}`,
  );
}, 300_000);

afterAll(async () => {
  await stopRun(run);
  await src?.end().catch(() => {});
  await dst?.end().catch(() => {});
  stopPostgres(SRC.name);
  stopPostgres(DST.name);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('rewind, forward and undo on a PostgreSQL target', () => {
  /** states[k]: the target after writer transaction k (states[0]: after the baseline). */
  const states: State[] = [];
  let txs: LogTx[] = [];

  it('rewinds by steps and by time to recorded states, forwards to them and to the source', async () => {
    states.push(await state(dst));
    for (let w = 1; w <= 5; w++) {
      await writeTx(w);
      await waitFor(`marker ${w}`, hasMarker(w));
      states.push(await state(dst));
    }
    expect(states[5]).toEqual(await state(src));
    expect(states[4]).not.toEqual(states[5]);
    txs = (await txLog()).filter((t) => !t.tx_id.startsWith('baseline'));
    expect(txs).toHaveLength(5);

    await cliOk(config, ['rewind', '--target', 'pgdst', '--steps', '2']);
    expect(await state(dst)).toEqual(states[3]);
    expect(await held()).toMatch(/^rewound to seq/);
    // By time: keep what committed at or before transaction 1 (µs since the epoch, as the journal has it).
    await cliOk(config, ['rewind', '--target', 'pgdst', '--to-time', txs[0]!.commit_time_us]);
    expect(await state(dst)).toEqual(states[1]);
    // The hold keeps apply paused: a new source transaction is captured, not applied.
    await writeTx(6);
    await new Promise((r) => setTimeout(r, 3000));
    expect(await state(dst)).toEqual(states[1]);
    await cliOk(config, ['forward', '--target', 'pgdst', '--steps', '1']);
    expect(await state(dst)).toEqual(states[2]);
    await cliOk(config, ['forward', '--target', 'pgdst', '--to-time', txs[3]!.commit_time_us]);
    expect(await state(dst)).toEqual(states[4]);
    await cliOk(config, ['forward', '--target', 'pgdst', '--to-head']);
    expect(await state(dst)).toEqual(await state(src));
    expect(await held()).toBeNull();
    expect(await hasMarker(6)()).toBe(true);
    states.push(await state(dst));
    // Apply resumed.
    await writeTx(7);
    await waitFor('marker 7 after the hold was released', hasMarker(7));
    states.push(await state(dst));
    expect(states[7]).toEqual(await state(src));
  }, 120_000);

  it('a --sql script run by psql -v ON_ERROR_STOP=1 gives the same state; a guard failure changes nothing', async () => {
    const file = join(dir, 'rewind.sql');
    await cliOk(config, ['rewind', '--target', 'pgdst', '--steps', '4', '--sql', file]);
    expect(await state(dst)).toEqual(states[7]); // only written
    const r = psql(file);
    expect(r.code, r.out).toBe(0);
    expect(await state(dst)).toEqual(states[3]);
    expect(await held()).toMatch(/^rewound to seq/);

    // A row inserted behind tidemark's back where the forward inserts one: the server refuses that INSERT (in a
    // round trip of many statements); the error names it, nothing changed.
    await dst.query(`INSERT INTO app.t (id, n) VALUES (104, 0)`);
    const dup = await runCli(['forward', '--target', 'pgdst', '--to-head', '-c', config]);
    expect(dup.code).not.toBe(0);
    expect(dup.stderr).toMatch(/redo insert of app\.t \(id=104\) .*the server refused it: duplicate key/);
    await dst.query('DELETE FROM app.t WHERE id = 104');
    expect(await state(dst)).toEqual(states[3]);
    // A row changed behind tidemark's back: the guarded forward fails and changes nothing.
    await dst.query('UPDATE app.t SET n = n + 100 WHERE id = 5');
    const changed = await state(dst);
    const f = await runCli(['forward', '--target', 'pgdst', '--to-head', '-c', config]);
    expect(f.code).not.toBe(0);
    expect(f.stderr).toMatch(/REWIND_GUARD|guard failed/);
    expect(f.stderr).toMatch(/app\.t \(id=5\)/);
    expect(await state(dst)).toEqual(changed);
    // The same as a script: psql stops with an error, nothing changed.
    const file2 = join(dir, 'forward.sql');
    await cliOk(config, ['forward', '--target', 'pgdst', '--to-head', '--sql', file2]);
    const r2 = psql(file2);
    expect(r2.code).not.toBe(0);
    expect(r2.out).toMatch(/tidemark guard failed: redo update of app\.t \(id=5\)/);
    expect(await state(dst)).toEqual(changed);
    await dst.query('UPDATE app.t SET n = n - 100 WHERE id = 5');
    await cliOk(config, ['forward', '--target', 'pgdst', '--to-head']);
    expect(await state(dst)).toEqual(await state(src));

    // A table captured without REPLICA IDENTITY FULL (source.identity_full_opt_out) has no before images: refused,
    // by name, nothing changed, the hold as it was.
    const optOut = join(dir, 'opt-out.yaml');
    const cfg = parse(readFileSync(config, 'utf8')) as { source: Record<string, unknown> };
    writeFileSync(optOut, stringify({ ...cfg, source: { ...cfg.source, identity_full_opt_out: ['app.m'] } }));
    const before = await state(dst);
    const o = await runCli(['rewind', '--target', 'pgdst', '--steps', '1', '--sql', join(dir, 'no.sql'), '-c', optOut]);
    expect(o.code).not.toBe(0);
    expect(o.stderr).toMatch(/REWIND_NO_BEFORE_IMAGE|app\.m is captured without REPLICA IDENTITY FULL/);
    expect(await state(dst)).toEqual(before);
    expect(await held()).toBeNull();
  }, 120_000);

  it('undo in each conflict mode with a later change of the same row', async () => {
    // U changes rows 30 and 31; L, later, changes row 30 again.
    const before = await state(dst);
    await src.query(`BEGIN; INSERT INTO app.m VALUES (70, now());
      UPDATE app.t SET n = -1, amt = 0.0000000001, iv = NULL WHERE id IN (30, 31); COMMIT`);
    await waitFor('marker 70', hasMarker(70));
    const afterU = await state(dst);
    await src.query(`BEGIN; INSERT INTO app.m VALUES (71, now()); UPDATE app.t SET n = -2 WHERE id = 30; COMMIT`);
    await waitFor('marker 71', hasMarker(71));
    const afterL = await state(dst);
    const log = await txLog();
    const u = log.at(-2)!.tx_id;
    const l = log.at(-1)!.tx_id;
    // history: every version of row 30, with both transactions.
    const history = await cliOk(config, ['history', '--table', 'app.t', '--key', 'id=30']);
    expect(history).toContain(u);
    expect(history).toContain(l);
    const row = (s: State, id: number) => s.rows['t']!.find((j) => (JSON.parse(j) as { id: number }).id === id);
    const m = (s: State) => s.rows['m']!;

    // nocascade: refused, the later transaction named, nothing changed.
    const r = await runCli(['undo', '--target', 'pgdst', '--tx', u, '-c', config]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/REWIND_CONFLICT|--mode nocascade/);
    expect(r.stderr).toContain(l);
    expect(await state(dst)).toEqual(afterL);

    // nonconflict: only row 31 (and U's marker) back to before U; row 30 keeps L's change. As a script, then run.
    const file = join(dir, 'undo.sql');
    const out = await cliOk(config, ['undo', '--target', 'pgdst', '--tx', u, '--mode', 'nonconflict', '--sql', file]);
    expect(out).toMatch(/skipped 1 row/);
    const p = psql(file);
    expect(p.code, p.out).toBe(0);
    const nonconflict = await state(dst);
    expect(row(nonconflict, 31)).toBe(row(before, 31));
    expect(row(nonconflict, 30)).toBe(row(afterL, 30));
    expect(m(nonconflict)).toEqual(m(before).concat(m(afterL).filter((x) => x.includes('"w":71'))));
    // Back as it was (by hand: the undo is not captured), then executed: the same outcome.
    await dst.query(`UPDATE app.t SET n = -1, amt = 0.0000000001, iv = NULL WHERE id = 31;
      INSERT INTO app.m SELECT * FROM json_populate_record(null::app.m, $$${m(afterU).find((x) => x.includes('"w":70'))}$$)`);
    expect(await state(dst)).toEqual(afterL);
    await cliOk(config, ['undo', '--target', 'pgdst', '--tx', u, '--mode', 'nonconflict']);
    expect(await state(dst)).toEqual(nonconflict);
    await dst.query(`UPDATE app.t SET n = -1, amt = 0.0000000001, iv = NULL WHERE id = 31;
      INSERT INTO app.m SELECT * FROM json_populate_record(null::app.m, $$${m(afterU).find((x) => x.includes('"w":70'))}$$)`);
    expect(await state(dst)).toEqual(afterL);

    // cascade: L undone first, then U: the target is back where it was before U.
    await cliOk(config, ['undo', '--target', 'pgdst', '--tx', u, '--mode', 'cascade']);
    expect(await state(dst)).toEqual(before);
    expect(await held()).toMatch(/^undid /);
  }, 120_000);
});

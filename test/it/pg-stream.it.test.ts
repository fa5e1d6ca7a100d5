/**
 * The PostgreSQL replication stream against a real PostgreSQL 15 (compose/local/postgres.sh): a pgoutput slot and
 * publication, a table of every awkward type plus a ~1 MB TOASTed column, streamed through walstream.ts as the
 * least-privilege capture role and decoded by pgoutput.ts. Checks: every value's text is exactly what SELECT
 * returns; the unchanged TOAST value is a typed marker and the server still holds it; deletes, TRUNCATE and a
 * transactional logical message arrive in order; acknowledgement never passes a transaction the test has not
 * confirmed (sampled every 100 ms); an idle captured database does not pin WAL written elsewhere.
 * TIDEMARK_RECORD_PGOUTPUT=1 rewrites capture/postgres/pgoutput.recorded.json with the real bytes (< 8 KiB each).
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgoutputDecoder } from '../../capture/postgres/pgoutput.ts';
import type { PgoutputMessage, PgValue } from '../../capture/postgres/pgoutput-messages.ts';
import { evaluatePgPrerequisites, factsFromRows, readPgFactRows } from '../../capture/postgres/prerequisites.ts';
import { startReplication } from '../../capture/postgres/replication.ts';
import type { WalStream } from '../../capture/postgres/walstream.ts';
import { parseLsn } from '../../postgres/lsn.ts';
import { openPgClient, type PgEndpoint } from '../../postgres/session.ts';
import { REPO_ROOT } from '../fixtures/mariadb.ts';
import { CAPTURE_USER, pgAdmin, SUPERUSER_PASSWORD, startPostgres, stopPostgres } from '../fixtures/postgres.ts';

const NAME = 'pg-stream';
const PORT = 5440;
const SLOT = 'tm_stream';
const PUB = 'tm_pub';
const FSYNC_MS = 250; // the "journal fsync" each commit waits before the test confirms it
const RECORD = process.env['TIDEMARK_RECORD_PGOUTPUT'] === '1';

const ep = (user: string, password: string, database: string): PgEndpoint => ({
  host: '127.0.0.1',
  port: PORT,
  user,
  password,
  database,
});

let admin: pg.Client; // superuser, database postgres (slot sampling, WAL elsewhere)
let app: pg.Client; // superuser in capdb through tidemark's own session (text values, fixed settings)
let stream: WalStream | undefined;

interface Tx {
  begin: PgoutputMessage<PgValue> & { tag: 'begin' };
  items: PgoutputMessage<PgValue>[];
  commit?: PgoutputMessage<PgValue> & { tag: 'commit' };
  /** Event sequence number at which the test confirmed the commit (Infinity until then). */
  confirmedAt: number;
}

/** A monotonic event counter shared by the consumer and the sampler: orders "confirmed" against "sampled". */
let seq = 0;

beforeAll(async () => {
  const t0 = Date.now();
  startPostgres(NAME, PORT, { fresh: true });
  admin = await pgAdmin(PORT);
  console.log(`postgres (install if needed + initdb + start): ${Date.now() - t0} ms`);
  await admin.query('CREATE DATABASE capdb');
  await admin.query('CREATE DATABASE otherdb');
  app = await openPgClient(ep('postgres', SUPERUSER_PASSWORD, 'capdb'));
  await app.query(`
    CREATE SCHEMA app;
    CREATE TYPE app.mood AS ENUM ('calm', 'stormy');
    CREATE TABLE app.t (
      id int PRIMARY KEY, ts timestamp(6), tstz timestamptz, num numeric(38,10), doc jsonb, bin bytea,
      ints int[], texts text[], u uuid, iv interval, mood app.mood, big text, note text);
    ALTER TABLE app.t REPLICA IDENTITY FULL;
    CREATE PUBLICATION ${PUB} FOR TABLE app.t;
    GRANT USAGE ON SCHEMA app TO tidemark_cap;
    GRANT SELECT ON app.t TO tidemark_cap;`);
}, 300_000);

afterAll(async () => {
  await stream?.close().catch(() => {});
  await app?.end().catch(() => {});
  await admin?.end().catch(() => {});
  stopPostgres(NAME);
});

/** Every row of app.t as the server's text (tidemark's session: the same settings as the walsender). */
async function rows(): Promise<Map<string, Record<string, string | null>>> {
  const r = await app.query('SELECT * FROM app.t ORDER BY id');
  return new Map(r.rows.map((row: Record<string, string | null>) => [String(row['id']), row]));
}

async function slotFlush(): Promise<{ flush: bigint; restart: bigint }> {
  const r = await admin.query(
    'SELECT confirmed_flush_lsn::text AS f, restart_lsn::text AS r FROM pg_replication_slots WHERE slot_name = $1',
    [SLOT],
  );
  return { flush: parseLsn(r.rows[0].f), restart: parseLsn(r.rows[0].r) };
}

function textOf(v: PgValue | undefined): string | null {
  if (!v) throw new Error('missing column');
  if (v.kind === 'null') return null;
  if (v.kind === 'unchanged') throw new Error('unchanged TOAST value where a value was expected');
  return v.text;
}

/** Compares a decoded tuple with a SELECTed row, column by column, as exact text. */
function expectRow(
  columns: readonly { name: string }[],
  tuple: readonly PgValue[],
  row: Record<string, string | null>,
) {
  columns.forEach((c, i) => {
    expect({ column: c.name, text: textOf(tuple[i]) }).toEqual({ column: c.name, text: row[c.name] ?? null });
  });
}

describe('pgoutput over walstream on PostgreSQL 15', () => {
  it('streams every type exactly, marks unchanged TOAST, acknowledges only what was confirmed, and acks idle WAL', async () => {
    // The slot belongs to the captured database: created there.
    const slot = await app.query("SELECT lsn::text AS lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')", [
      SLOT,
    ]);
    const startLsn = parseLsn(slot.rows[0].lsn);
    const ws = await startReplication(ep(CAPTURE_USER.user, CAPTURE_USER.password, 'capdb'), {
      slot: SLOT,
      publications: [PUB],
      startLsn,
      statusIntervalMs: 1000,
    });
    stream = ws; // closed in afterAll too, should an assertion fail

    // ── prerequisites, read as the capture role while its walsender runs ──
    const cap = await openPgClient(ep(CAPTURE_USER.user, CAPTURE_USER.password, 'capdb'));
    const wanted = [
      { schema: 'app', table: 't' },
      { schema: 'app', table: 'missing' },
    ];
    const factRows = await readPgFactRows(cap, { slot: SLOT, tables: wanted });
    await cap.end();
    expect(evaluatePgPrerequisites(factsFromRows(factRows, wanted))).toEqual([
      'table app.missing does not exist (or the role cannot see it): create it or remove it from the captured tables',
    ]);

    // ── the consumer: decode, "fsync" each commit for FSYNC_MS, then confirm its end LSN ──
    const decoder = new PgoutputDecoder();
    const txs: Tx[] = [];
    const recorded: Record<string, string[]> = {};
    let lastConfirmed = startLsn;
    let consumerError: unknown;
    const consumer = (async () => {
      let cur: Tx | undefined;
      for await (const x of ws) {
        const msg = decoder.decode(x.payload);
        const kind = String.fromCharCode(x.payload[0] as number);
        if (x.payload.length < 8192)
          recorded[kind] = [...(recorded[kind] ?? []), Buffer.from(x.payload).toString('hex')];
        if (msg.tag === 'begin') cur = { begin: msg, items: [], confirmedAt: Number.POSITIVE_INFINITY };
        else if (msg.tag === 'commit') {
          if (!cur) throw new Error('commit without begin');
          cur.commit = msg;
          // The XLogData of a Commit starts at the commit's end LSN: the position to confirm, as is.
          expect(x.walStart).toBe(msg.endLsn);
          expect(msg.commitLsn).toBe(cur.begin.finalLsn);
          txs.push(cur);
          const done = cur;
          cur = undefined;
          await new Promise((r) => setTimeout(r, FSYNC_MS));
          ws.confirm(done.commit?.endLsn ?? 0n);
          done.confirmedAt = ++seq;
          lastConfirmed = msg.endLsn;
        } else if (cur) cur.items.push(msg);
      }
    })().catch((e: unknown) => {
      consumerError = e;
    });

    // ── the sampler: confirmed_flush_lsn every 100 ms ──
    const samples: { flush: bigint; at: number }[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const { flush } = await slotFlush();
        samples.push({ flush, at: ++seq });
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    // ── the workload, one transaction per step, each followed by the SELECTed truth ──
    const truth: Map<string, Record<string, string | null>>[] = [];
    const big = "SELECT string_agg(md5(g::text), '') FROM generate_series(1, 32768) g"; // 1 MiB, hardly compressible
    await app.query(`INSERT INTO app.t VALUES
      (1, '2026-12-06 12:34:56.123456', '2026-12-06 12:34:56.654321+05:30', '1234567890123456789012345678.0123456789',
       '{"b": [1, 2.50, "ü"], "a": null, "long": 12345678901234567890.5}', '\\x00ff10', '{1,NULL,-3}',
       '{"a,b","c\\"d",NULL,"ünï"}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1 year 2 mons 3 days 04:05:06.789',
       'stormy', (${big}), 'n1'),
      (2, '0001-01-01 00:00:00', '1970-01-01 00:00:00.000001+00', '-0.0000000001', '[]', '\\x', '{}', '{""}',
       NULL, '-00:00:00.000001', NULL, NULL, NULL)`);
    truth.push(await rows());
    await app.query("UPDATE app.t SET note = 'n2' WHERE id = 1"); // big is not touched: TOAST 'u'
    truth.push(await rows());
    // T3 runs under a replication origin (as an applier's session would): the stream carries an Origin message.
    await app.query("SELECT pg_replication_origin_create('tm_origin')");
    await app.query("SELECT pg_replication_origin_session_setup('tm_origin')");
    await app.query("UPDATE app.t SET num = '99999999999999999999999999.9999999999', ts = 'infinity' WHERE id = 2");
    await app.query('SELECT pg_replication_origin_session_reset()');
    truth.push(await rows());
    await app.query('BEGIN');
    await app.query("SELECT pg_logical_emit_message(true, 'tidemark.test', 'hello ü')");
    await app.query('INSERT INTO app.t (id, doc, note) VALUES (3, \'{"k": "v"}\', \'three\')');
    await app.query('COMMIT');
    truth.push(await rows());
    await app.query('DELETE FROM app.t WHERE id = 2');
    await app.query('TRUNCATE app.t');

    const deadline = Date.now() + 20_000;
    while (txs.length < 6 && Date.now() < deadline && consumerError === undefined) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(consumerError).toBeUndefined();
    expect(txs).toHaveLength(6);
    // Let the last confirm reach the server, then stop sampling.
    while (txs.some((t) => !Number.isFinite(t.confirmedAt))) await new Promise((r) => setTimeout(r, 50));
    ws.flush();
    await new Promise((r) => setTimeout(r, 300));
    sampling = false;
    await sampler;

    // ── values ──
    const rel = decoder.relation(Number((await app.query("SELECT 'app.t'::regclass::oid AS o")).rows[0].o));
    expect(rel?.replicaIdentity).toBe('f');
    const cols = rel?.columns ?? [];
    expect(cols.map((c) => c.name)).toEqual([
      'id',
      'ts',
      'tstz',
      'num',
      'doc',
      'bin',
      'ints',
      'texts',
      'u',
      'iv',
      'mood',
      'big',
      'note',
    ]);
    const [t1, t2, t3, t4, t5, t6] = txs as [Tx, Tx, Tx, Tx, Tx, Tx];
    const changes = (t: Tx) => t.items.filter((m) => m.tag !== 'relation' && m.tag !== 'type' && m.tag !== 'origin');
    // T1: two inserts, every column's text exactly as SELECT returns it.
    const ins = changes(t1);
    expect(ins.map((m) => m.tag)).toEqual(['insert', 'insert']);
    for (const m of ins) {
      if (m.tag !== 'insert') throw new Error('unreachable');
      expectRow(cols, m.newTuple, truth[0]?.get(textOf(m.newTuple[0]) ?? '') ?? {});
    }
    expect(t1.items.some((m) => m.tag === 'type' && m.name === 'mood' && m.namespace === 'app')).toBe(true);
    // T2: the TOASTed column untouched → the unchanged marker (never NULL) in the new tuple; the server kept it.
    const [u2] = changes(t2);
    if (u2?.tag !== 'update') throw new Error(`expected an update, got ${u2?.tag}`);
    const bigIdx = cols.findIndex((c) => c.name === 'big');
    expect(u2.newTuple[bigIdx]).toEqual({ kind: 'unchanged', typeOid: cols[bigIdx]?.typeOid });
    const row1 = truth[1]?.get('1') ?? {};
    expect(row1['big']?.length).toBe(32768 * 32);
    expect(row1['big']).toBe(truth[0]?.get('1')?.['big']);
    cols.forEach((c, i) => {
      if (i !== bigIdx)
        expect({ column: c.name, text: textOf(u2.newTuple[i]) }).toEqual({
          column: c.name,
          text: row1[c.name] ?? null,
        });
    });
    expect(u2.old?.kind).toBe('old'); // REPLICA IDENTITY FULL: the whole before image
    expect(textOf(u2.old?.tuple[cols.findIndex((c) => c.name === 'note')])).toBe('n1');
    // T3: the extreme numeric and timestamp 'infinity' round-trip as text.
    expect(t3.items.find((m) => m.tag === 'origin')).toMatchObject({ tag: 'origin', name: 'tm_origin' });
    expect(t1.items.some((m) => m.tag === 'origin')).toBe(false);
    const [u3] = changes(t3);
    if (u3?.tag !== 'update') throw new Error('expected an update');
    expectRow(cols, u3.newTuple, truth[2]?.get('2') ?? {});
    // T4: the transactional logical message, then the insert, inside the same transaction.
    const c4 = changes(t4);
    expect(c4.map((m) => m.tag)).toEqual(['message', 'insert']);
    const m4 = c4[0];
    if (m4?.tag !== 'message') throw new Error('unreachable');
    expect({ transactional: m4.transactional, prefix: m4.prefix, text: Buffer.from(m4.content).toString() }).toEqual({
      transactional: true,
      prefix: 'tidemark.test',
      text: 'hello ü',
    });
    if (c4[1]?.tag !== 'insert') throw new Error('unreachable');
    expectRow(cols, c4[1].newTuple, truth[3]?.get('3') ?? {});
    // T5: the delete carries the whole old row (FULL).
    const [d5] = changes(t5);
    if (d5?.tag !== 'delete') throw new Error('expected a delete');
    expectRow(cols, d5.old.tuple, truth[3]?.get('2') ?? {});
    // T6: TRUNCATE names the relation.
    const [tr] = changes(t6);
    expect(tr).toEqual({ tag: 'truncate', cascade: false, restartIdentity: false, relationOids: [rel?.relationOid] });

    // ── acknowledgement: no sample ever passed the commit of a transaction not yet confirmed at that time ──
    let pendingSamples = 0;
    for (const s of samples) {
      for (const t of txs) {
        if (t.confirmedAt > s.at) {
          pendingSamples++;
          expect(s.flush, `sample ${s.at} vs commit ${t.commit?.commitLsn}`).toBeLessThanOrEqual(
            t.commit?.commitLsn ?? 0n,
          );
        }
      }
    }
    expect(pendingSamples).toBeGreaterThan(5); // the check had teeth: samples fell inside pending windows
    expect((await slotFlush()).flush).toBeGreaterThanOrEqual(lastConfirmed);

    // ── idle: WAL written in another database only; the slot's confirmed_flush_lsn must follow within 30 s ──
    const other = await pgAdmin(PORT, 'otherdb');
    const before = await slotFlush();
    const t0 = Date.now();
    await other.query(
      `CREATE TABLE filler AS SELECT g, repeat(md5(g::text), 8) AS pad FROM generate_series(1, 20000) g`,
    );
    const written = parseLsn((await other.query('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l);
    await other.query('SELECT pg_switch_wal()');
    await other.query('CHECKPOINT');
    await other.end();
    expect(written - before.flush).toBeGreaterThan(4n << 20n);
    let now = before;
    while (Date.now() - t0 < 30_000) {
      now = await slotFlush();
      if (now.flush >= written && now.restart > before.restart) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    console.log(
      `idle ack: confirmed_flush ${before.flush} → ${now.flush}, restart ${before.restart} → ${now.restart} ` +
        `(WAL written to ${written}) in ${Date.now() - t0} ms; ${samples.length} samples, ${pendingSamples} pending checks`,
    );
    expect(now.flush).toBeGreaterThanOrEqual(written);
    expect(now.restart).toBeGreaterThan(before.restart);

    await ws.close();
    await consumer;
    if (RECORD) {
      const file = resolve(REPO_ROOT, 'capture/postgres/pgoutput.recorded.json');
      writeFileSync(file, `${JSON.stringify({ server: 'PostgreSQL 15', messages: recorded }, null, 2)}\n`);
      const rowsFile = resolve(REPO_ROOT, 'capture/postgres/prerequisites.recorded.json');
      writeFileSync(rowsFile, `${JSON.stringify({ server: 'PostgreSQL 15', wanted, rows: factRows }, null, 2)}\n`);
    }
  }, 90_000);

  it('survives consumer fsyncs longer than wal_sender_timeout: keepalives answered at once, timer while paused', async () => {
    await admin.query("ALTER SYSTEM SET wal_sender_timeout = '2s'");
    await admin.query('SELECT pg_reload_conf()');
    try {
      for (const phase of ['keepalive', 'paused'] as const) {
        const slot = `tm_slow_${phase}`;
        const r = await app.query("SELECT lsn::text AS lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')", [
          slot,
        ]);
        const ws = await startReplication(ep(CAPTURE_USER.user, CAPTURE_USER.password, 'capdb'), {
          slot,
          publications: [PUB],
          startLsn: parseLsn(r.rows[0].lsn),
          // keepalive: no timer help, only the immediate answers keep the walsender alive.
          // paused: reading is paused (a 1 MiB row over a 64 KiB mark), keepalives are not even read: the timer must.
          statusIntervalMs: phase === 'keepalive' ? 60_000 : 500,
          highWaterBytes: phase === 'keepalive' ? 64 << 20 : 64 << 10,
        });
        stream = ws;
        const pid = async () =>
          (await admin.query('SELECT active_pid AS p FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0]
            .p;
        const pid0 = await pid();
        const decoder = new PgoutputDecoder();
        const ids: string[] = [];
        const id = 100 + (phase === 'keepalive' ? 0 : 10);
        // A small transaction (its commit is the slow one), then a 1 MiB row that queues up meanwhile, then another.
        await app.query(`INSERT INTO app.t (id) VALUES (${id})`);
        await app.query(
          `INSERT INTO app.t (id, big) VALUES (${id + 1}, (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 32768) g))`,
        );
        await app.query(`INSERT INTO app.t (id) VALUES (${id + 2})`);
        let slowDone = false;
        for await (const x of ws) {
          const m = decoder.decode(x.payload);
          if (m.tag === 'insert') ids.push(m.newTuple[0]?.kind === 'text' ? m.newTuple[0].text : '?');
          if (m.tag !== 'commit') continue;
          if (!slowDone) {
            // The journal's fsync of the first commit takes 3 × wal_sender_timeout.
            await new Promise((res) => setTimeout(res, 6000));
            slowDone = true;
          }
          ws.confirm(m.endLsn);
          if (ids.length === 3) break;
        }
        expect(ids).toEqual([String(id), String(id + 1), String(id + 2)]);
        expect(await pid()).toBe(pid0); // the same walsender: never timed out
        if (phase === 'paused') expect(ws.pauses).toBeGreaterThan(0);
        await ws.close();
      }
    } finally {
      await admin.query('ALTER SYSTEM RESET wal_sender_timeout');
      await admin.query('SELECT pg_reload_conf()');
    }
  }, 60_000);

  it('a terminated walsender is a retriable PG_CONNECT; a slot lost to max_slot_wal_keep_size is PG_SLOT_LOST', async () => {
    const create = async (slot: string) =>
      parseLsn(
        (await app.query("SELECT lsn::text AS lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')", [slot]))
          .rows[0].lsn,
      );
    const capEp = ep(CAPTURE_USER.user, CAPTURE_USER.password, 'capdb');
    const ws = await startReplication(capEp, {
      slot: 'tm_term',
      publications: [PUB],
      startLsn: await create('tm_term'),
    });
    stream = ws;
    // The handler goes on at once: the stream may fail before the terminate's own reply is read.
    const pending = ws.next().catch((e: unknown) => e);
    await admin.query("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'tm_term'");
    const err = await pending;
    expect(err).toMatchObject({ code: 'PG_CONNECT', retriable: true });
    await ws.close();

    await admin.query("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'");
    await admin.query('SELECT pg_reload_conf()');
    try {
      const start = await create('tm_lost');
      const other = await pgAdmin(PORT, 'otherdb');
      for (let i = 0; i < 3 && (await slotStatus('tm_lost')) !== 'lost'; i++) {
        await other.query(
          `CREATE TABLE lost_${i} AS SELECT g, repeat(md5(g::text), 8) AS pad FROM generate_series(1, 20000) g`,
        );
        await other.query('SELECT pg_switch_wal()');
        await other.query('CHECKPOINT');
      }
      await other.end();
      expect(await slotStatus('tm_lost')).toBe('lost');
      const lost = await startReplication(capEp, { slot: 'tm_lost', publications: [PUB], startLsn: start }).catch(
        (e: unknown) => e,
      );
      expect(lost).toMatchObject({ code: 'PG_SLOT_LOST', retriable: false });
      expect((lost as Error).message).toMatch(/^replication slot tm_lost was invalidated: .*re-baseline/);
    } finally {
      await admin.query('ALTER SYSTEM RESET max_slot_wal_keep_size');
      await admin.query('SELECT pg_reload_conf()');
    }
  }, 60_000);
});

async function slotStatus(slot: string): Promise<string> {
  return (await admin.query('SELECT wal_status AS s FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0].s;
}

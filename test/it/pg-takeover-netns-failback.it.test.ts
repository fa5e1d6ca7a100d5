/**
 * Failback of a PostgreSQL old primary in network namespaces (issue #14 acceptance: "failback with an injected
 * errant transaction → quarantined, rewound, rejoined, verify equal"), the processes as users run them, in the lab
 * of test/fixtures/pg-takeover-lab.ts (pnprim, pnstby, pnwit, pncli, the VIP 10.231.0.160):
 *
 *   1. the primary's host is cut off while the application writes through the VIP; errant transactions are
 *      committed on it: two while its tidemark still runs (captured into its journal, never shipped: the link is
 *      cut), one after its tidemark stopped (only in its capture slot). Its guard fences it; the standby takes over
 *      automatically (the check-only fence hook sees it read-only), the VIP moves, the application writes on.
 *   2. `tidemark failback` at the old primary (the config in which it was the primary): without --yes it lists the
 *      errant transactions and writes the psql quarantine file, changing nothing; with --yes it rewinds them, makes
 *      its journal a mirror of the new primary's and drops its capture slot.
 *   3. the reversed topology (dr1 the primary, the old primary a standby) from a second config file: the
 *      application's writes through the VIP reach the old primary, which stays read-only, and `tidemark verify`
 *      (checksums) says it is equal to the new primary.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lastCommit } from '../../journal/index.ts';
import { parseLsn } from '../../postgres/lsn.ts';
import { cut, heal, netnsUnavailable, tcpReachable } from '../fixtures/netns.ts';
import {
  PG_HOSTS,
  PG_PRIMARY,
  PG_SERVICE_PORT,
  PG_STANDBY,
  pgAt,
  usePgTakeoverLab,
} from '../fixtures/pg-takeover-lab.ts';
import { sleep } from '../fixtures/sites.ts';

const unavailable = netnsUnavailable();
if (unavailable) console.warn(`pg-takeover-netns-failback: skipped, network namespaces unavailable: ${unavailable}`);

type Db = { name: string; port: number };

/** Errant rows are marked port = 1 (the application's carry 5510 or 5511, the preloaded ones 0). */
const ERRANT = 1;

const readOnly = (db: Db) =>
  pgAt(db, async (c) => (await c.query('SHOW default_transaction_read_only')).rows[0].default_transaction_read_only);
const one = (db: Db, sql: string) => pgAt(db, async (c) => (await c.query(sql)).rows[0] as Record<string, unknown>);
/** Every row of app.w, as one digest (the two servers hold the same rows when equal). */
const digest = async (db: Db) =>
  String((await one(db, "SELECT count(*) || ':' || md5(string_agg(w::text, ',' ORDER BY id)) AS d FROM app.w w")).d);

async function until(what: string, ok: () => Promise<boolean>, ms: number, log: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms\n${log()}`);
    await sleep(200);
  }
}

describe.skipIf(unavailable !== null)('PostgreSQL failback in network namespaces', () => {
  const lab = usePgTakeoverLab();

  it('errant transactions quarantined and rewound; the old primary rejoins through the VIP and verifies equal', async () => {
    const t0 = Date.now();
    await lab.start();
    const { prim, stby } = lab.hosts;
    const w = lab.writer!;
    const r1 = await one(PG_PRIMARY, 'SELECT id::int AS id, seq FROM app.w ORDER BY id LIMIT 1');
    const r2id = Number(r1.id) + 1;

    // Cut off. Errant while its tidemark runs (as the superuser through the socket, read-write for its session
    // whether or not the guard fenced already): an insert, then an update and a delete; captured into its journal.
    const sampler = lab.sampler();
    await sleep(300);
    cut(prim);
    const lsnBefore = await pgAt(PG_PRIMARY, async (c) => {
      await c.query('SET default_transaction_read_only = off');
      await c.query(`INSERT INTO app.w (seq, port) VALUES (-1001, ${ERRANT})`);
      const lsn = parseLsn((await c.query('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l);
      await c.query(`UPDATE app.w SET seq = seq - 5000 WHERE id = ${r1.id}; DELETE FROM app.w WHERE id = ${r2id}`);
      return lsn;
    });
    const headLsn = async () => {
      const p = (await lastCommit(lab.primaryJournal))?.position;
      return p?.kind === 'sequence' ? p.value : 0n;
    };
    await until(
      'the errant transactions in its journal',
      async () => (await headLsn()) > lsnBefore,
      20_000,
      () => lab.primary.tail(10),
    );

    // The takeover: the guard fences the cut primary, the fence hook sees it read-only, dr1 promotes.
    const p = await lab.waitPromotion(45_000);
    if (!p) throw new Error(`no takeover within 45 s of the cut\n${lab.standby.tail(15)}`);
    expect(p).toMatchObject({ standby: 'dr1', mode: 'automatic', status: expect.stringMatching(/^completed/) });
    const hook = p.timeline.find((e) => e.step === 'fence-hook');
    expect(hook).toMatchObject({ outcome: 'ok', detail: expect.stringMatching(/default_transaction_read_only=on/) });
    // The promoted site turns its mirror into the primary journal and writes the lineage row on its server.
    const lineage = () =>
      one(PG_STANDBY, "SELECT site, branch_seq::text AS s FROM tidemark.failover_lineage WHERE source = 'pnsrc'");
    await until(
      'the lineage row on the new primary',
      async () => (await lineage())?.site === 'dr1',
      30_000,
      () => lab.standby.tail(10),
    );
    const takenOver = Date.now();
    // The cut primary's guard fenced it before dr1 promoted: never two writable servers.
    const s = await sampler.stop();
    expect(s.twoWritable, JSON.stringify(s.twoWritable.slice(0, 3))).toEqual([]);
    expect(s.samples).toBeGreaterThan(20);
    // Errant after its tidemark stopped: only in its capture slot (failback's catch-up must read it).
    await lab.primary.stop(10_000);
    await pgAt(PG_PRIMARY, async (c) => {
      await c.query('SET default_transaction_read_only = off');
      await c.query(`INSERT INTO app.w (seq, port) VALUES (-1002, ${ERRANT})`);
    });
    heal(prim);
    await w.successes(10, 30_000);
    expect(lab.vipHolders()).toEqual(['pnstby']);
    // The healed host may still hold a failed neighbour entry for the standby from the cut: wait until it reaches
    // it, as an operator would before running failback there.
    const reachBy = Date.now() + 20_000;
    while (!tcpReachable(prim, PG_HOSTS.stby, PG_SERVICE_PORT) && Date.now() < reachBy) await sleep(250);
    expect(await readOnly(PG_PRIMARY)).toBe('on');
    console.log(
      `takeover done ${takenOver - t0} ms after the start; ${s.samples} writable samples, largest gap ${s.maxGapMs} ms`,
    );

    // Failback, first without --yes: listed and quarantined, nothing changed.
    const quarantine = join(lab.dir, 'quarantine.sql');
    const look = await lab.cliIn(prim, ['failback', '-c', lab.config, '--quarantine', quarantine], 120_000);
    console.log(`failback (look): ${look.out}`);
    expect(look.code, look.err.slice(-2000)).toBe(0);
    // The 3 injected (application writes committed just before the cut may not have shipped either).
    const sum = /(\d+) errant transactions? after LSN \d+: (\d+) insert, 1 update, 1 delete, 0 DDL/.exec(look.out);
    expect(sum, look.out).not.toBeNull();
    expect(Number(sum?.[1])).toBeGreaterThanOrEqual(3);
    expect(Number(sum?.[2])).toBeGreaterThanOrEqual(2);
    expect(look.out).toMatch(/nothing changed/);
    expect(statSync(quarantine).mode & 0o777).toBe(0o600);
    const q = readFileSync(quarantine, 'utf8');
    expect(q).toContain('\\set ON_ERROR_STOP on');
    expect(q).toMatch(/INSERT INTO "app"\."w" \(.*\) VALUES \(.*'-1001'::integer, '1'::integer/);
    expect(q).toMatch(/INSERT INTO "app"\."w" \(.*\) VALUES \(.*'-1002'::integer, '1'::integer/);
    expect(q).toMatch(new RegExp(`UPDATE "app"\\."w" SET .* WHERE "id" = '${r1.id}'::bigint`));
    expect(q).toMatch(new RegExp(`DELETE FROM "app"\\."w" WHERE "id" = '${r2id}'::bigint`));
    expect((await one(PG_PRIMARY, `SELECT count(*)::int AS n FROM app.w WHERE port = ${ERRANT}`)).n).toBe(2);

    // With --yes: rewound, demoted, moved to where the reversed config expects this site's mirror.
    const yes = ['failback', '-c', lab.config, '--quarantine', `${quarantine}.2`, '--yes'];
    const done = await lab.cliIn(prim, [...yes, '--mirror-dir', lab.oldPrimaryMirror], 120_000);
    console.log(`failback: ${done.out}`);
    expect(done.code, done.err.slice(-2000)).toBe(0);
    expect((await one(PG_PRIMARY, `SELECT count(*)::int AS n FROM app.w WHERE port = ${ERRANT}`)).n).toBe(0);
    expect((await one(PG_PRIMARY, `SELECT seq FROM app.w WHERE id = ${r1.id}`)).seq).toBe(r1.seq);
    expect((await one(PG_PRIMARY, `SELECT count(*)::int AS n FROM app.w WHERE id = ${r2id}`)).n).toBe(1);
    expect(await readOnly(PG_PRIMARY)).toBe('on');
    expect(await one(PG_PRIMARY, "SELECT seq::text AS s, hold FROM tidemark.applied WHERE source = 'pnsrc'")).toEqual({
      s: (await lineage())?.s,
      hold: null,
    });
    expect((await one(PG_PRIMARY, 'SELECT count(*)::int AS n FROM pg_replication_slots')).n).toBe(0);

    // The reversed topology: the application's writes through the VIP reach the old primary.
    await lab.startReversed();
    await w.successes(30, 30_000);
    await w.stop();
    const lastSeq = Math.max(...w.attempts.filter((a) => a.ok).map((a) => a.seq));
    await until(
      'the old primary caught up with the new one',
      async () => (await digest(PG_PRIMARY)) === (await digest(PG_STANDBY)),
      60_000,
      () => `${lab.standby.tail(8)}\n${lab.primary.tail(8)}`,
    );
    const held = await one(PG_PRIMARY, `SELECT port FROM app.w WHERE seq = ${lastSeq} AND port > 1`);
    expect(held?.port).toBe(PG_STANDBY.port);
    expect(await readOnly(PG_PRIMARY)).toBe('on');
    // --wait-seconds short: verify's wait for "caught up" compares the journal with pg_current_wal_lsn(), which WAL
    // that capture never decodes can leave ahead of it on a quiet source (the rows are already equal, above).
    const vargs = ['verify', '-c', lab.reversedConfig, '--target', 'oldprimary', '--json', '--wait-seconds', '5'];
    const v = await lab.cliIn(stby, vargs, 90_000);
    console.log(`verify: ${v.out.slice(-800)}`);
    expect(v.code, v.err.slice(-2000)).toBe(0);
    expect(v.out).toMatch(/"equal":\s*true/);
    for (const r of lab.runs()) r.assertRunning();
    console.log(`pg failback in namespaces: ${Date.now() - t0} ms`);
  }, 300_000);
});

/**
 * Takeover acceptance (issue #5), failback — real MariaDB in network namespaces (test/fixtures/takeover.ts):
 *
 *   1. the primary is isolated while the application writes; errant transactions are injected on it: some while
 *      its tidemark still runs (captured into its journal, never shipped: the link is cut), one after its tidemark
 *      stopped (only in its binlog). The standby takes over; the application writes on through the VIP.
 *   2. `tidemark failback` at the old primary (the config in which it was the primary): without --yes it shows the
 *      errant transactions and writes the quarantine file, changing nothing; with --yes it rewinds them and makes
 *      its journal a mirror of the new primary's.
 *   3. the reversed topology (dr1 the primary, the old primary a standby) runs from a second config file; the old
 *      primary receives the new primary's changes from the branch point, stays read-only, and `tidemark verify`
 *      says it is equal to the new primary.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cut, heal, netnsUnavailable, tcpReachable } from '../fixtures/netns.ts';
import { sleep } from '../fixtures/sites.ts';
import {
  dbQuery,
  HOSTS,
  NsRun,
  PRIMARY_DB,
  readOnly,
  SERVICE_PORT,
  STANDBY_DB,
  TakeoverLab,
} from '../fixtures/takeover.ts';
import { ACCOUNTS } from '../fixtures/takeover-lab-files.ts';

const unavailable = netnsUnavailable();
if (unavailable) console.warn(`failover-failback: skipped, network namespaces unavailable: ${unavailable}`);

const REVERSED_SHIP_PORT = 7633;

/** dr1 is the primary, the old primary's site a standby with its mirror under ./primary/standby. */
function reversedYaml(): string {
  return `# written by test/it/failover-failback.it.test.ts
source: { name: tasrc, host: ${HOSTS.stby}, port: ${SERVICE_PORT}, user: tidemark_cap, password: cap-pw,
          server_id: 40632, connect_timeout_ms: 2000, include: ["app.*"] }
journal: { dir: ./dr1/tasrc, fsync: group, group_commit_ms: 5 }
site: dr1
ship: { certs_dir: ./certs, heartbeat_ms: 250 }
standbys:
  - { name: primary, transport: tcp, address: "${HOSTS.prim}:${REVERSED_SHIP_PORT}", journal_dir: ./primary/standby }
targets:
  - { name: oldprimary, site: primary, host: ${HOSTS.prim}, port: ${SERVICE_PORT}, user: ${ACCOUNTS.apply.user}, password: ${ACCOUNTS.apply.password} }
rollback: { index: false }
log: { level: info }
`;
}

const count = async (db: string, where: string) =>
  Number(Object.values((await dbQuery(db, `SELECT COUNT(*) AS n FROM app.w WHERE ${where}`))[0] ?? {})[0]);

describe.skipIf(unavailable !== null)('takeover: failback', () => {
  const lab = new TakeoverLab();
  const runs: NsRun[] = [];

  beforeAll(async () => {
    await lab.setup();
  });

  afterAll(async () => {
    await Promise.allSettled(runs.map((r) => r.stop(5000)));
    await lab.teardown();
  });

  it('errant transactions are quarantined and rewound; the old primary rejoins and verifies equal', async () => {
    const t0 = Date.now();
    await lab.startRound();
    const { prim, stby } = lab.hosts;
    const w = lab.writer!;
    const before = await dbQuery<{ id: number; seq: number }[]>(
      PRIMARY_DB.name,
      'SELECT id, seq FROM app.w ORDER BY id LIMIT 2',
    );
    const [r1, r2] = before;
    if (!r1 || !r2) throw new Error('no rows yet');

    cut(prim);
    // Errant while the old primary's tidemark runs: an insert, an update and a delete (root writes through
    // read_only, like an account with READ_ONLY ADMIN would; the application's account could not after the guard).
    await dbQuery(
      PRIMARY_DB.name,
      `INSERT INTO app.w (seq, server_id) VALUES (-1, 1); UPDATE app.w SET seq = seq + 1000 WHERE id = ${r1.id};
       DELETE FROM app.w WHERE id = ${r2.id}`,
    );
    const p = await lab.waitPromotion(40_000);
    expect(p?.status).toMatch(/^completed/);
    // The promoted site turns its mirror into the primary journal (promotion.json gets its id).
    const deadline = Date.now() + 30_000;
    while (!(lab.promotion() as { journal?: unknown } | null)?.journal && Date.now() < deadline) await sleep(200);
    expect((lab.promotion() as { journal?: { id: string } } | null)?.journal?.id).toMatch(/^[0-9a-f-]{36}$/);
    await lab.primary.stop(10_000);
    // Errant after its tidemark stopped: only in its binlog (failback's catch-up capture must find it).
    await dbQuery(PRIMARY_DB.name, 'INSERT INTO app.w (seq, server_id) VALUES (-2, 1)');
    heal(prim);
    await w.successes(10, 30_000);
    // The client reaches the new primary through the VIP, but the healed host may still hold a failed neighbour
    // entry for the standby from the cut (connect: EHOSTUNREACH for a few seconds): wait until it reaches it too,
    // as an operator would before running failback there.
    const reachBy = Date.now() + 20_000;
    while (!tcpReachable(prim, stby.addr, SERVICE_PORT) && Date.now() < reachBy) await sleep(250);
    expect(await readOnly(PRIMARY_DB.name)).toBe(true);

    // Failback, first without --yes: shown and quarantined, nothing changed.
    const quarantine = join(lab.dir, 'quarantine.sql');
    const mirror = join(lab.dir, 'primary', 'standby', 'tasrc');
    const look = await lab.cliIn(prim, ['failback', '-c', lab.config, '--quarantine', quarantine], 120_000);
    console.log(`failback (look): ${look.out}\n${look.err.slice(-2000)}`);
    expect(look.code).toBe(0);
    // At least the 4 injected ones (application writes committed just before the cut may not have shipped either).
    expect(Number(/(\d+) errant transactions? after LSN/.exec(look.out)?.[1])).toBeGreaterThanOrEqual(4);
    expect(look.out).toMatch(/ update, 1 delete, /);
    expect(look.out).toMatch(/nothing changed/);
    expect(await count(PRIMARY_DB.name, 'seq < 0')).toBe(2);
    const q = readFileSync(quarantine, 'utf8');
    expect(statSync(quarantine).mode & 0o777).toBe(0o600);
    expect(q).toMatch(/INSERT INTO `app`\.`w`.*-1/);
    expect(q).toMatch(/INSERT INTO `app`\.`w`.*-2/);
    expect(q).toMatch(/UPDATE `app`\.`w`/);
    expect(q).toMatch(/DELETE FROM `app`\.`w`/);

    // With --yes: rewound, demoted, moved to where the reversed config expects this site's mirror.
    const done = await lab.cliIn(
      prim,
      ['failback', '-c', lab.config, '--quarantine', `${quarantine}.2`, '--yes', '--mirror-dir', mirror],
      180_000,
    );
    console.log(`failback: ${done.out}\n${done.err.slice(-2000)}`);
    expect(done.code).toBe(0);
    expect(await count(PRIMARY_DB.name, 'seq < 0')).toBe(0);
    const [back1] = await dbQuery<{ seq: number }[]>(PRIMARY_DB.name, `SELECT seq FROM app.w WHERE id = ${r1.id}`);
    expect(back1?.seq).toBe(r1.seq);
    expect(await count(PRIMARY_DB.name, `id = ${r2.id}`)).toBe(1);
    expect(await readOnly(PRIMARY_DB.name)).toBe(true);
    // A second run finds it done.
    const again = await lab.cliIn(prim, ['failback', '-c', lab.config, '--mirror-dir', mirror], 60_000);
    expect(again.out).toMatch(/already a mirror/);

    // The reversed topology: dr1's process restarted with the new config, the old primary's site a standby.
    const reversed = join(lab.dir, 'tidemark.dr1.yaml');
    writeFileSync(reversed, reversedYaml());
    await lab.standby.stop(10_000);
    const logOf = (n: string) => join(lab.dir, 'logs', `${n}-failback.log`);
    const newPrimary = new NsRun(stby, ['run', '-c', reversed, '--site', 'dr1'], logOf('dr1'), 'dr1').start();
    const oldPrimary = new NsRun(
      prim,
      ['run', '-c', reversed, '--site', 'primary'],
      logOf('primary'),
      'primary',
    ).start();
    runs.push(newPrimary, oldPrimary);
    await w.successes(30, 30_000);
    await w.stop();
    const want = Number(Object.values((await dbQuery(STANDBY_DB.name, 'SELECT MAX(id) AS m FROM app.w'))[0] ?? {})[0]);
    const until = Date.now() + 60_000;
    let have = 0;
    while (Date.now() < until) {
      have = Number(Object.values((await dbQuery(PRIMARY_DB.name, 'SELECT MAX(id) AS m FROM app.w'))[0] ?? {})[0]);
      if (have >= want) break;
      newPrimary.assertRunning();
      oldPrimary.assertRunning();
      await sleep(300);
    }
    expect(have).toBe(want);
    const v = await lab.cliIn(stby, ['verify', '-c', reversed, '--target', 'oldprimary', '--json'], 120_000);
    console.log(`verify: ${v.out.slice(-1500)} ${v.err.slice(-1500)}`);
    expect(v.code).toBe(0);
    expect(v.out).toMatch(/"equal":\s*true/);
    expect(await readOnly(PRIMARY_DB.name)).toBe(true);
    console.log(`failback test: ${Date.now() - t0} ms`);
  });
});

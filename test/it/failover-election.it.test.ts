/**
 * Takeover acceptance (issue #5) with two standbys, automatic — real MariaDB in network namespaces
 * (test/fixtures/takeover.ts with secondStandby: dr1 on tastby, dr2 on tastb2):
 *
 *   - dr2 falls behind (its link from the primary is blocked while the application writes on), then the primary's
 *     mariadbd is killed: both standbys and the witness lose it. Each standby reports its position to the witness;
 *     the most advanced one (dr1) wins and takes over, dr2 defers and never promotes;
 *   - dr2 then follows dr1 (repoint): its mirror adopts dr1's journal from where it was, without a baseline, and
 *     receives what it missed and what the application writes on dr1; `tidemark verify` with the config of the new
 *     topology says dr2's server equals dr1's.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killInstance } from '../fixtures/mariadb.ts';
import { block, netnsUnavailable } from '../fixtures/netns.ts';
import { lineText, sleep } from '../fixtures/sites.ts';
import {
  dbQuery,
  HOSTS,
  PRIMARY_DB,
  SERVICE_PORT,
  SHIP_PORT2,
  STANDBY_DB,
  STANDBY2_DB,
  TakeoverLab,
} from '../fixtures/takeover.ts';
import { ACCOUNTS } from '../fixtures/takeover-lab-files.ts';

const unavailable = netnsUnavailable();
if (unavailable) console.warn(`failover-election: skipped, network namespaces unavailable: ${unavailable}`);

const maxId = async (db: string) =>
  Number(Object.values((await dbQuery(db, 'SELECT COALESCE(MAX(id), 0) AS m FROM app.w'))[0] ?? {})[0]);

describe.skipIf(unavailable !== null)('takeover: two standbys', () => {
  const lab = new TakeoverLab({ secondStandby: true });

  beforeAll(async () => {
    await lab.setup();
  });

  afterAll(async () => {
    await lab.teardown();
  });

  it('the most advanced standby takes over, the other defers and follows it without a baseline', async () => {
    const t0 = Date.now();
    await lab.startRound();
    const { prim, stby } = lab.hosts;
    const stb2 = lab.hosts.stb2;
    const dr2 = lab.standby2;
    if (!stb2 || !dr2) throw new Error('the lab has no second standby');
    const w = lab.writer!;
    // dr2 caught up first, then cut off from the primary while the application writes on: dr1 is ahead.
    const want = await maxId(PRIMARY_DB.name);
    for (const deadline = Date.now() + 30_000; (await maxId(STANDBY2_DB.name)) < want; await sleep(200)) {
      if (Date.now() > deadline) throw new Error('dr2 never caught up');
    }
    block(prim, stb2);
    await w.successes(40, 20_000);
    await lab.waitStandbyCaughtUp(20_000);
    const behind = await maxId(STANDBY2_DB.name);
    expect(await maxId(STANDBY_DB.name)).toBeGreaterThan(behind);

    killInstance(PRIMARY_DB.name);
    const p = await lab.waitPromotion(40_000);
    expect(p?.standby).toBe('dr1');
    expect(p?.mode).toBe('automatic');
    expect(p?.status).toMatch(/^completed/);
    await w.successes(30, 30_000);
    // dr2 never promoted, and said why: dr1 was ahead (defer), or dr1 already was the primary.
    expect(existsSync(join(lab.dir, 'dr2', 'failover', 'promotion.json'))).toBe(false);
    const dr2Lines = () => dr2.lines().map(lineText).join('\n');
    expect(dr2Lines()).toMatch(/dr1 takes over: |dr1 was promoted at /);
    const dr1Lines = lab.standby.lines().map(lineText).join('\n');
    expect(dr1Lines).toMatch(/takeover by dr1: /);

    // dr2 follows dr1: it adopted dr1's journal from its own head and gets what the application writes there.
    await w.stop();
    const onNew = await maxId(STANDBY_DB.name);
    for (const deadline = Date.now() + 60_000; (await maxId(STANDBY2_DB.name)) < onNew; await sleep(300)) {
      if (Date.now() > deadline) throw new Error(`dr2 not at id ${onNew}:\n${dr2.tail()}`);
      dr2.assertRunning();
    }
    expect(dr2Lines()).toMatch(/continues journal [0-9a-f-]+ after LSN \d+ \(a promoted standby\); this mirror/);
    expect(dr2Lines()).not.toMatch(/baseline starts|rebaseline/i);

    // verify with the config of the new topology: dr1 the primary, dr2 its standby.
    const after = join(lab.dir, 'tidemark.after.yaml');
    writeFileSync(
      after,
      `source: { name: tasrc, host: ${HOSTS.stby}, port: ${SERVICE_PORT}, user: tidemark_cap, password: cap-pw, include: ["app.*"] }
journal: { dir: ./dr1/tasrc }
site: dr1
ship: { certs_dir: ./certs }
standbys:
  - { name: dr2, transport: tcp, address: "${HOSTS.stb2}:${SHIP_PORT2}", journal_dir: ./dr2 }
targets:
  - { name: replica2, site: dr2, host: ${HOSTS.stb2}, port: ${SERVICE_PORT}, user: ${ACCOUNTS.apply.user}, password: ${ACCOUNTS.apply.password} }
`,
    );
    const v = await lab.cliIn(stby, ['verify', '-c', after, '--target', 'replica2', '--json'], 120_000);
    console.log(`election verify: ${v.out.slice(-800)} ${v.err.slice(-800)}`);
    expect(v.code).toBe(0);
    expect(v.out).toMatch(/"equal":\s*true/);
    console.log(`election test: ${Date.now() - t0} ms`);
  });
});

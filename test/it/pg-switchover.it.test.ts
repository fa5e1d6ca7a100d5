/**
 * Planned switchover of a PostgreSQL pair (issue #14, scope 7), on 127.0.0.1: `tidemark run --site primary`
 * captures PostgreSQL 15 on port 5542 and ships over TCP (7870) to `tidemark run --site dr1`, which applies to port
 * 5543, while the application (role tm_app) inserts without pause, going to whichever server takes its writes
 * (as a client with two hosts and target_session_attrs=read-write would).
 *
 * First a switchover whose standby target is unreachable (a second config pointing dr1's target at a closed
 * port): the primary is fenced, the marker written, the drain fails, nothing is promoted and the primary is
 * writable again (the application writes there again). Then `tidemark switchover --to dr1`: fenced, the
 * 'tidemark.switchover' marker awaited in dr1's tidemark.applied, held, promoted; every acknowledged write is on
 * the new primary afterwards; the write pause is printed. Then `tidemark failback` (without --yes) at the old
 * primary's site finds no errant transaction, and with --yes demotes it without a rewind (branch position, slot
 * dropped, still read-only).
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseLsn } from '../../postgres/lsn.ts';
import { positionFromJson } from '../../record/position.ts';
import { APPLY_USER, CAPTURE_USER } from '../fixtures/postgres.ts';
import {
  appdbAdmin,
  appdbEndpoint,
  FAILOVER_ROLE,
  pgReadOnly,
  startPgFailoverPair,
  stopPgFailoverPair,
  tcpStandby,
} from '../fixtures/pg-failover.ts';
import { sleep } from '../fixtures/sites.ts';
import { runCli, startRun, stopRun } from '../fixtures/topology.ts';

const SRC = { name: 'pgsw-src', port: 5542 };
const DST = { name: 'pgsw-dst', port: 5543 };
const CLOSED_PORT = 5549;
const SHIP_PORT = 7870;
const ROWS = 20;

let dir = '';
let primaryRun: ChildProcess | null = null;
let drRun: ChildProcess | null = null;
const clients: pg.Client[] = [];

const admin = (port: number) => appdbAdmin(port, clients);

function writeConfig(name: string, targetPort: number): string {
  const ep = appdbEndpoint;
  const doc = {
    source: { kind: 'postgres', name: 'pg-main', ...ep(SRC.port, CAPTURE_USER), publication: 'tidemark' },
    journal: { dir: join(dir, 'journal') },
    site: 'primary',
    ship: { plaintext: true, heartbeat_ms: 100 },
    standbys: [tcpStandby('dr1', SHIP_PORT, join(dir, 'dr1'))],
    targets: [{ name: 'dr1db', kind: 'postgres', site: 'dr1', ...ep(targetPort, APPLY_USER) }],
    rollback: { index: false },
    failover: { mode: 'manual', account: FAILOVER_ROLE, timeouts: { drain_ms: 15_000 } },
    log: { level: 'info', file: join(dir, `${name}.log`) },
  };
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, stringify(doc));
  return file;
}

/** The application: inserts one row after another; on a failure it reconnects to the other server. */
class Writer {
  readonly acked: number[] = [];
  /** Longest time between two acknowledged writes while `measuring`. */
  maxGapMs = 0;
  measuring = false;
  #stop = false;
  #port = SRC.port;
  #done: Promise<void> | null = null;

  start(): void {
    this.#done = this.#loop();
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await this.#done;
  }

  async #loop(): Promise<void> {
    let id = 1000;
    let c: pg.Client | null = null;
    let last = Date.now();
    while (!this.#stop) {
      try {
        if (!c) {
          c = new pg.Client({ ...appdbEndpoint(this.#port, { user: 'tm_app', password: 'app-pw' }) });
          c.on('error', () => {});
          await c.connect();
        }
        await c.query('INSERT INTO app.t VALUES ($1, $2)', [id, `app ${id}`]);
        this.acked.push(id);
        id++;
        const now = Date.now();
        if (this.measuring) this.maxGapMs = Math.max(this.maxGapMs, now - last);
        last = now;
        await sleep(5);
      } catch (err) {
        // A commit whose answer was lost (its session ended) is there already: the next row, not acknowledged.
        if ((err as { code?: string }).code === '23505') id++;
        await c?.end().catch(() => undefined);
        c = null;
        this.#port = this.#port === SRC.port ? DST.port : SRC.port;
        await sleep(20);
      }
    }
    await c?.end().catch(() => undefined);
  }
}

async function ids(c: pg.Client): Promise<Set<number>> {
  return new Set((await c.query('SELECT id FROM app.t')).rows.map((r: { id: number }) => r.id));
}

function problems(): string {
  const log = join(dir, 'run.log');
  const err = [primaryRun, drRun].map(
    (r) => `exit ${r?.exitCode}: ${(r as { lastStderr?: () => string } | null)?.lastStderr?.() ?? ''}`,
  );
  return [...err, ...(existsSync(log) ? readFileSync(log, 'utf8').split('\n') : [])]
    .filter((l) => /"level":(40|50|60)|^exit/.test(l))
    .slice(-10)
    .join('\n');
}

describe('switchover of a PostgreSQL pair', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pgsw-'));
    await startPgFailoverPair(SRC, DST);
  }, 180_000);

  afterAll(() => stopPgFailoverPair([SRC, DST], { runs: [primaryRun, drRun], clients, dir }));

  it('gives up when the standby cannot be reached, then moves the primary role with every write kept', async () => {
    const config = writeConfig('run', DST.port);
    const unreachable = writeConfig('unreachable', CLOSED_PORT);
    const src = await admin(SRC.port);
    const dst = await admin(DST.port);
    for (let i = 1; i <= ROWS; i++) await src.query('INSERT INTO app.t VALUES ($1, $2)', [i, `before ${i}`]);
    await src.end(); // a superuser's session would leave the fence unconfirmed (the failover role cannot end it)
    primaryRun = startRun(config, ['--site', 'primary']);
    drRun = startRun(config, ['--site', 'dr1']);
    const app = new Writer();
    app.start();
    const t0 = Date.now();
    while ((await ids(dst).catch(() => new Set())).size < ROWS + 10 && Date.now() - t0 < 60_000) await sleep(250);
    if ((await ids(dst)).size < ROWS + 10) console.log(dir, problems());
    expect((await ids(dst)).size).toBeGreaterThanOrEqual(ROWS + 10);

    // A switchover that cannot reach dr1's target: fenced, then given up before promoting; writable again.
    const failed = await runCli(['switchover', '-c', unreachable, '--to', 'dr1'], { timeoutMs: 90_000 });
    console.log(failed.stdout);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/fence-db +ok/);
    expect(failed.stdout).toMatch(/drain +failed/);
    expect(failed.stdout).not.toMatch(/promote +ok/);
    expect(await pgReadOnly(SRC.port)).toBe(false);
    expect(existsSync(join(dir, 'dr1', 'failover', 'promotion.json'))).toBe(false);
    const n = app.acked.length;
    const t1 = Date.now();
    while (app.acked.length < n + 5 && Date.now() - t1 < 20_000) await sleep(50);
    expect(app.acked.length).toBeGreaterThanOrEqual(n + 5); // the application writes on the old primary again

    // The switchover.
    app.measuring = true;
    const r = await runCli(['switchover', '-c', config, '--to', 'dr1'], { timeoutMs: 90_000 });
    console.log(r.stdout);
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(r.stdout).toMatch(/^switchover completed: dr1 promoted/m);
    const marker = /applied the switchover marker ([0-9A-F]+\/[0-9A-F]+)/.exec(r.stdout);
    expect(marker).not.toBeNull();
    const pause = /writes paused ([\d.]+) s/.exec(r.stdout);
    expect(pause).not.toBeNull();
    // The marker's transaction is the target's applied position (it was journaled, shipped and applied).
    const applied = await dst.query("SELECT position, hold FROM tidemark.applied WHERE source = 'pg-main'");
    const at = positionFromJson(JSON.parse(applied.rows[0].position), 'tidemark.applied.position');
    expect(at.kind === 'sequence' ? at.value : -1n).toBeGreaterThanOrEqual(parseLsn(marker?.[1] as string));
    expect(applied.rows[0].hold).toMatch(/^promoted/);
    const promotion = JSON.parse(readFileSync(join(dir, 'dr1', 'failover', 'promotion.json'), 'utf8'));
    expect(promotion).toMatchObject({ mode: 'switchover', status: 'completed', position: { engine: 'postgres' } });
    expect(await pgReadOnly(SRC.port)).toBe(true); // the old primary stays fenced

    // The application goes on on the new primary; every acknowledged write is there.
    const m = app.acked.length;
    const t2 = Date.now();
    while (app.acked.length < m + 20 && Date.now() - t2 < 30_000) await sleep(50);
    await app.stop();
    expect(app.acked.length).toBeGreaterThanOrEqual(m + 20);
    const onNew = await ids(dst);
    const missing = app.acked.filter((id) => !onNew.has(id));
    expect(missing).toEqual([]);
    for (let i = 1; i <= ROWS; i++) expect(onNew.has(i)).toBe(true);

    // The old primary can become dr1's standby without a rewind: failback finds nothing errant.
    const lineage = async () =>
      (await dst.query("SELECT site FROM tidemark.failover_lineage WHERE source = 'pg-main'")).rows[0]?.site;
    const t3 = Date.now();
    while ((await lineage().catch(() => null)) !== 'dr1' && Date.now() - t3 < 30_000) await sleep(200);
    expect(await lineage()).toBe('dr1');
    await stopRun(primaryRun);
    primaryRun = null;
    const fb = await runCli(['failback', '-c', config, '--quarantine', join(dir, 'q.sql')], { timeoutMs: 90_000 });
    console.log(`failback (look): ${fb.stdout}`);
    expect(fb.code, fb.stderr.slice(-2000)).toBe(0);
    expect(fb.stdout).toMatch(/no errant transactions after LSN \d+/);
    // With --yes: nothing to rewind; demoted (its tidemark.applied at the branch point, no hold), its slot dropped.
    const mirror = join(dir, 'primary-standby', 'pg-main');
    const yes = ['failback', '-c', config, '--quarantine', join(dir, 'q2.sql'), '--yes', '--mirror-dir', mirror];
    const demoted = await runCli(yes, { timeoutMs: 90_000 });
    console.log(`failback: ${demoted.stdout}`);
    expect(demoted.code, demoted.stderr.slice(-2000)).toBe(0);
    const old = await admin(SRC.port);
    const row = (await old.query("SELECT seq::text AS s, hold FROM tidemark.applied WHERE source = 'pg-main'")).rows[0];
    expect(row?.hold).toBeNull();
    expect(BigInt(row?.s ?? -1)).toBeGreaterThan(0n);
    expect((await old.query('SELECT count(*)::int AS n FROM pg_replication_slots')).rows[0].n).toBe(0);
    expect(await pgReadOnly(SRC.port)).toBe(true);
    console.log(
      `switchover: writes paused ${pause?.[1]} s (fence to promotion); the application's longest wait between ` +
        `acknowledged writes ${(app.maxGapMs / 1000).toFixed(3)} s; ${app.acked.length} writes acknowledged, all on dr1`,
    );
  }, 240_000);
});

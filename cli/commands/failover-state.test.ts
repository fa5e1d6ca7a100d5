import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/config.ts';
import { failoverLines, readFailoverStatus } from './status-failover.ts';
import {
  readHistory,
  readPromotion,
  setSwitchover,
  switchoverRunning,
  writeHistory,
  writeMonitorFile,
  writePromotion,
} from '../../node/failover-state.ts';
import { capturedHeartbeat } from '../../failover/switchover-marker.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'tm-fo-'));
  dirs.push(d);
  return d;
};

function config(dir: string, include = '[app.*]', heartbeat = 'tidemark.heartbeat') {
  return parseConfig(
    `source: {name: s1, user: u, include: ${include}}
journal: {dir: ./primary}
ship: {plaintext: true}
standbys: [{name: dr1, address: "127.0.0.1:7400", journal_dir: ./dr1}]
targets: [{name: r1, user: u, site: dr1}]
failover: {account: {user: root, password: secret-pw}, monitor: {heartbeat: {table: ${heartbeat}}}}
`,
    join(dir, 'tidemark.yaml'),
  );
}

describe('failover state files', () => {
  it('keeps the takeover history, and refuses a damaged one instead of reading it as empty', async () => {
    const d = tmp();
    expect(await readHistory(d)).toEqual({ lastAutomaticAt: null, last: null });
    const h = { lastAutomaticAt: 1000, last: { at: 1000, winner: 'dr1', mode: 'automatic' as const } };
    await writeHistory(d, h);
    expect(await readHistory(d)).toEqual(h);
    writeFileSync(join(d, 'failover', 'history.json'), '{"lastAutomaticAt":"soon"}');
    await expect(readHistory(d)).rejects.toThrow(/takeover history lastAutomaticAt must be a number or null/);
  });

  it('marks a running switchover for a while only', async () => {
    const d = tmp();
    expect(await switchoverRunning(d, 60_000)).toBe(false);
    await setSwitchover(d, true);
    expect(await switchoverRunning(d, 60_000)).toBe(true);
    expect(await switchoverRunning(d, 0)).toBe(false); // too old for that limit: a crashed switchover expires
    await setSwitchover(d, false);
    expect(await switchoverRunning(d, 60_000)).toBe(false);
  });

  it('status shows the monitor per probe and the last takeover with its timeline', async () => {
    const d = tmp();
    const c = config(d);
    const base = c.standbys[0]?.journal_dir as string;
    await writeMonitorFile(base, 'monitor.json', {
      site: 'dr1',
      role: 'standby',
      updatedAt: new Date().toISOString(),
      monitor: {
        overall: 'failed',
        since: 5000,
        probes: [
          {
            name: 'heartbeat',
            kind: 'heartbeat',
            critical: true,
            state: 'failed',
            since: 5000,
            failures: 4,
            successes: 0,
            failingSince: 3000,
            lastResultAt: 6000,
            lastSuccessAt: 2000,
            lastError: 'connect ECONNREFUSED',
            lastLatencyMs: null,
            lastLagMs: null,
          },
        ],
      },
      decision: 'no takeover: witness still sees the primary',
      pid: 1,
    });
    await writePromotion(base, {
      at: new Date(9000).toISOString(),
      standby: 'dr1',
      target: 'r1',
      oldPrimary: 'primary',
      mode: 'automatic',
      reason: 'takeover by dr1',
      position: { gtid: '0-2-7', file: 'mysql-bin.000002', offset: '1234' },
      status: 'completed',
      timeline: [{ step: 'promote', outcome: 'ok', startedAt: 8000, endedAt: 8500, detail: 'writable' }],
    });
    expect(((await readPromotion(base))?.position as { offset?: string } | null)?.offset).toBe('1234');
    const st = await readFailoverStatus(c);
    expect(st?.map((s) => [s.site, s.role, s.running])).toEqual([['dr1', 'promoted', true]]);
    const text = failoverLines(st).join('\n');
    expect(text).toMatch(/probe {5}heartbeat failed since .*: connect ECONNREFUSED/);
    expect(text).toMatch(
      /takeover {2}automatic at 1970-01-01T00:00:09.000Z from primary: completed at mysql-bin\.000002:1234/,
    );
    expect(text).toMatch(/promote/);
  });
});

describe('switchover prerequisites', () => {
  it('needs the heartbeat table captured, and says what to add', () => {
    const d = tmp();
    const c = config(d);
    expect(() => capturedHeartbeat(c.source, c.failover!.monitor.heartbeat.table)).toThrow(
      /tidemark's own schema is never captured/,
    );
    const other = config(d, '[app.*]', 'ha.heartbeat');
    expect(() => capturedHeartbeat(other.source, other.failover!.monitor.heartbeat.table)).toThrow(
      /heartbeat table ha\.heartbeat to be captured: add it to source\.include/,
    );
    const ok = config(d, '[app.*, ha.heartbeat]', 'ha.heartbeat');
    expect(capturedHeartbeat(ok.source, ok.failover!.monitor.heartbeat.table)).toEqual({
      schema: 'ha',
      table: 'heartbeat',
    });
  });

  it('keeps the failover password out of the loaded config', () => {
    const c = config(tmp());
    expect(JSON.stringify(c)).not.toContain('secret-pw');
    expect(c.failover?.account.password).toBe('secret-pw');
  });
});

import { describe, expect, it } from 'vitest';
import { Deadline, fenceHook, sessionsToKill } from './fence.ts';

describe('sessionsToKill', () => {
  it('kills client sessions, spares ours, replication, system and binlog dump threads', () => {
    const rows = [
      { id: '5', user: 'tidemark_fence', command: 'Query' }, // ours
      { id: '6', user: 'app', command: 'Sleep' },
      { id: '7', user: 'root', command: 'Query' },
      { id: '8', user: 'tidemark_cap', command: 'Binlog Dump' },
      { id: '9', user: 'system user', command: 'Slave_SQL' },
      { id: '10', user: 'event_scheduler', command: 'Daemon' },
      { id: '11', user: 'app', command: 'Killed' },
      { id: '12', user: 'unauthenticated user', command: 'Connect' },
    ];
    expect(sessionsToKill(rows, '5').map((r) => r.id)).toEqual(['6', '7', '12']);
  });
});

describe('Deadline', () => {
  it('rejects a race once it passes, and calls the expiry handler', async () => {
    const d = new Deadline(50, 'fence db1:3306');
    let expired = false;
    d.onExpire(() => {
      expired = true;
    });
    await expect(d.race(new Promise(() => {}))).rejects.toThrow('fence db1:3306: no answer within 50 ms');
    expect(expired).toBe(true);
    expect(d.left()).toBe(0);
  });

  it('lets a faster promise win', async () => {
    const d = new Deadline(1000, 'x');
    expect(await d.race(Promise.resolve(7))).toBe(7);
    d.clear();
  });
});

describe('fenceHook', () => {
  const event = { kind: 'fence', site: 'dr1', oldPrimary: 'db1', offset: 5n };

  it('exit 0 confirms; the event arrives as JSON on stdin', async () => {
    const r = await fenceHook(['bash', '-c', 'read -r line; echo "fenced $line"'], { timeoutMs: 5000, event });
    expect(r).toEqual({
      confirmed: true,
      detail: expect.stringMatching(
        /^fence hook bash exited 0 in \d+ ms: fenced \{"kind":"fence","site":"dr1","oldPrimary":"db1","offset":"5"\}$/,
      ),
    });
  });

  it('a non-zero exit, a timeout or a missing program is not confirmed, and never throws', async () => {
    expect(await fenceHook(['bash', '-c', 'echo no power switch >&2; exit 1'], { timeoutMs: 5000, event })).toEqual({
      confirmed: false,
      detail: "fence hook bash -c 'echo no power switch >&2; exit 1': exited with 1: no power switch",
    });
    const t0 = Date.now();
    const hung = await fenceHook(['sleep', '30'], { timeoutMs: 200, event });
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(hung.confirmed).toBe(false);
    expect(hung.detail).toMatch(/timed out after \d+ ms/);
    expect(await fenceHook(['/nonexistent/stonith'], { timeoutMs: 1000, event })).toMatchObject({
      confirmed: false,
      detail: expect.stringContaining('cannot run /nonexistent/stonith'),
    });
  });
});

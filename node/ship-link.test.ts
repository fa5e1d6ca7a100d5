/**
 * The per-standby link's state machine (ship-link.ts): every transition with its reason, the events that change
 * nothing, one log line per change, and the state file it makes for `tidemark status`.
 */
import { describe, expect, it } from 'vitest';
import { captureLog } from '../test/fixtures/ship-link.ts';
import type { LinkState } from '../ship/link-status.ts';
import { type LinkEvent, linkFile, newLink, noteAck, step, transition } from './ship-link.ts';

const fail = (fatal: boolean): LinkEvent => ({ kind: 'fail', error: 'boom', fatal, retryInMs: fatal ? 30_000 : 2000 });

describe('ship link: transition', () => {
  it('moves through the states a shipper goes through, each with its reason', () => {
    const path: [LinkEvent, LinkState, string][] = [
      [{ kind: 'start' }, 'connecting', 'shipper started'],
      [{ kind: 'transport', state: 'streaming' }, 'streaming', 'the transport reports streaming'],
      [{ kind: 'transport', state: 'backoff' }, 'backoff', 'the transport reports backoff'],
      [{ kind: 'transport', state: 'connecting' }, 'connecting', 'the transport reports connecting'],
      [fail(false), 'failed', 'shipping not ready: boom; retrying in 2 s'],
      [{ kind: 'start' }, 'connecting', 'shipper started'],
      [{ kind: 'pause' }, 'paused', 'paused (tidemark ship resume ends it)'],
      [{ kind: 'resume' }, 'connecting', 'resumed'],
      [{ kind: 'transport', state: 'done' }, 'done', 'the transport reports done'],
      [{ kind: 'stop' }, 'stopped', 'the process stops'],
    ];
    let state: LinkState = 'backoff';
    for (const [e, to, why] of path) {
      const t = transition(state, e);
      expect(t, `${state} + ${JSON.stringify(e)}`).toMatchObject({ from: state, to, why });
      state = to;
    }
  });

  it('logs a fatal failure as an error and a retriable one as a warning; a failure in failed is a transition', () => {
    expect(transition('connecting', fail(true))).toEqual({
      from: 'connecting',
      to: 'failed',
      why: 'shipping stopped: boom; trying again in 30 s',
      level: 'error',
    });
    expect(transition('failed', fail(false))).toMatchObject({ from: 'failed', to: 'failed', level: 'warn' });
    expect(transition('connecting', { kind: 'start' })).toBeNull();
  });

  it('changes nothing on events that do not apply', () => {
    // The transport's own stopped (its signal aborted) is the link's pause or stop, which follow as their own events.
    expect(transition('streaming', { kind: 'transport', state: 'stopped' })).toBeNull();
    expect(transition('streaming', { kind: 'transport', state: 'listening' })).toBeNull();
    expect(transition('streaming', { kind: 'transport', state: 'streaming' })).toBeNull();
    expect(transition('streaming', { kind: 'resume' })).toBeNull(); // not paused
    expect(transition('paused', { kind: 'pause' })).toBeNull();
    // While paused no shipper runs: a late report of the one just stopped does not end the pause.
    for (const e of [{ kind: 'start' }, { kind: 'transport', state: 'streaming' }, fail(true)] as LinkEvent[]) {
      expect(transition('paused', e)).toBeNull();
    }
    // stopped is the end.
    for (const e of [{ kind: 'start' }, { kind: 'resume' }, { kind: 'pause' }, fail(false)] as LinkEvent[]) {
      expect(transition('stopped', e)).toBeNull();
    }
  });
});

describe('ship link: the state object', () => {
  it('logs each change of state once, with from, to and why', () => {
    const { log, lines } = captureLog();
    const link = newLink('dr1', 'tcp', 0n, null);
    step(link, { kind: 'start' }, log); // connecting → connecting: nothing
    step(link, { kind: 'transport', state: 'streaming' }, log);
    step(link, { kind: 'transport', state: 'streaming' }, log);
    step(link, { kind: 'pause' }, log);
    expect(link.state).toBe('paused');
    const changes = lines.filter((l) => l['from'] !== undefined);
    expect(changes.map((l) => [l['from'], l['to'], l['why']])).toEqual([
      ['connecting', 'streaming', 'the transport reports streaming'],
      ['streaming', 'paused', 'paused (tidemark ship resume ends it)'],
    ]);
    expect(changes[0]?.['msg']).toBe('standby dr1: link connecting → streaming: the transport reports streaming');
  });

  it('keeps the highest unit acknowledged, and writes what status reads', () => {
    const link = newLink('dr2', 'kafka', 10n, null);
    noteAck(link, { lsn: 14n, unitLsn: 12n, commitTimeUs: 1_000_000n });
    noteAck(link, { lsn: 11n, unitLsn: 11n, commitTimeUs: 900_000n }); // a receiver recovery went back
    expect(link.acked).toEqual({ lsn: 11n, unitLsn: 12n });
    expect(link.ackedCommitTimeUs).toBe(1_000_000n);
    link.level = 'alarm';
    link.retainedBytes = 4096;
    link.lastError = 'earlier failure';
    const f = linkFile(link, new Date('2026-01-02T03:04:05Z'));
    expect(f).toMatchObject({
      standby: 'dr2',
      transport: 'kafka',
      state: 'connecting',
      ackedLsn: '12',
      ackedUnitLsn: '12',
      ackedCommitTimeUs: '1000000',
      connects: 0,
      lastError: 'earlier failure',
      retainedBytes: 4096,
      cap: 'alarm',
      pid: process.pid,
      updatedAt: '2026-01-02T03:04:05.000Z',
    });
    expect(typeof f.lastAckAt).toBe('string');
    link.dropped = { at: 'x', reason: 'y', ackedLsn: '12', retainedBytes: 1 };
    expect(linkFile(link).cap).toBe('dropped');
  });

  it('takes the counters and error of the running shipper', () => {
    const link = newLink('dr3', 'redis', 0n, null);
    link.lastError = 'old';
    link.running = {
      finished: new Promise(() => undefined),
      status: () => ({
        state: 'backoff',
        ackedLsn: 0n,
        ackedUnitLsn: 0n,
        lastAckAt: null,
        connects: 3,
        lastError: 'redis down',
      }),
    };
    expect(linkFile(link)).toMatchObject({ connects: 3, lastError: 'redis down' });
  });
});

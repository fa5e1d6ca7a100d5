import { describe, expect, it } from 'vitest';
import type { MysqlPosition } from '../record/position.ts';
import { type CaptureReadState, judgeCatchUp, STALE_MS } from './capture-state.ts';

const pos = (file: number, offset: number): MysqlPosition => ({
  kind: 'mysql',
  binlog: { file: `bin.${String(file).padStart(6, '0')}`, offset: BigInt(offset) },
});
const NOW = 1_000_000;
const state = (over: Partial<CaptureReadState> = {}): CaptureReadState => ({
  pid: 1,
  host: 'h',
  updatedAtMs: NOW - 1000,
  phase: 'streaming',
  readPosition: pos(1, 900),
  lastSeq: 10n,
  ...over,
});
const head = { seq: 10n, position: pos(1, 500) };

describe('judgeCatchUp', () => {
  it('the journal reaching the source is caught up, running or not', () => {
    const r = judgeCatchUp({ source: pos(1, 500), head, state: null, nowMs: NOW, alive: true });
    expect(r).toEqual({ running: false, readPosition: null, caughtUp: true, by: 'journal' });
  });

  it('a running capture that read past the source position (excluded tables only since) is caught up', () => {
    const r = judgeCatchUp({ source: pos(1, 900), head, state: state(), nowMs: NOW, alive: true });
    expect(r).toEqual({ running: true, readPosition: pos(1, 900), caughtUp: true, by: 'read-position' });
  });

  it('not while the journal lacks what capture had handed over', () => {
    const r = judgeCatchUp({ source: pos(1, 900), head, state: state({ lastSeq: 11n }), nowMs: NOW, alive: true });
    expect(r.caughtUp).toBe(false);
  });

  it('a stale file, a dead pid or a capture still reading: behind (as before)', () => {
    const base = { source: pos(1, 900), head, nowMs: NOW };
    const stale = judgeCatchUp({ ...base, state: state({ updatedAtMs: NOW - STALE_MS - 1 }), alive: true });
    expect(stale).toEqual({ running: false, readPosition: null, caughtUp: false, by: null });
    expect(judgeCatchUp({ ...base, state: state(), alive: false }).running).toBe(false);
    expect(judgeCatchUp({ ...base, state: state({ phase: 'baseline' }), alive: true }).running).toBe(false);
    const reading = judgeCatchUp({ ...base, state: state({ readPosition: pos(1, 800) }), alive: true });
    expect(reading).toMatchObject({ running: true, caughtUp: false });
    expect(judgeCatchUp({ ...base, source: pos(2, 4), state: state(), alive: true }).caughtUp).toBe(false);
  });
});

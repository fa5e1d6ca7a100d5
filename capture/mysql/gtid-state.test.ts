import { describe, expect, it } from 'vitest';
import { GtidState } from './gtid-state.ts';

describe('GtidState', () => {
  it('keeps the latest GTID of each domain, in domain order', () => {
    const s = new GtidState('1-3-7, 0-1-40');
    expect(s.seeded).toBe(true);
    expect(s.add('0-1-41')).toBe('0-1-41,1-3-7');
    expect(s.add('2-2-5')).toBe('0-1-41,1-3-7,2-2-5');
    expect(s.add('1-3-8')).toBe('0-1-41,1-3-8,2-2-5');
  });

  it('without a seed, or for a MySQL GTID, reports the transaction own GTID', () => {
    expect(new GtidState(undefined).add('0-1-5')).toBe('0-1-5');
    expect(new GtidState('').add('0-1-5')).toBe('0-1-5');
    const uuid = '3e11fa47-71ca-11e1-9e33-c80aa9429562:23';
    expect(new GtidState('0-1-4').add(uuid)).toBe(uuid);
  });
});

import { describe, expect, it } from 'vitest';
import { ConfigError } from '../core/errors.ts';
import { compileCalendar, constantCalendar, parseDays, parseTimeOfDay } from './calendar.ts';

const utc = (iso: string): number => Date.parse(`${iso}Z`);

describe('parseDays', () => {
  it('reads single days, lists, ranges, wrapping ranges and daily', () => {
    expect(parseDays('sun')).toBe(0b0000001);
    expect(parseDays('mon-fri')).toBe(0b0111110);
    expect(parseDays('sat,sun')).toBe(0b1000001);
    expect(parseDays('fri-mon')).toBe(0b1100011);
    expect(parseDays('Mon, wed-thu')).toBe(0b0011010);
    expect(parseDays('daily')).toBe(0x7f);
  });
  it('names the expected form on a bad day', () => {
    expect(() => parseDays('monday')).toThrow(/"monday" is not a day \(expected mon, tue/);
    expect(() => parseDays('mon-xyz')).toThrow(/expected e.g. "mon-fri"/);
  });
});

describe('parseTimeOfDay', () => {
  it('accepts 00:00 to 24:00', () => {
    expect(parseTimeOfDay('00:00')).toBe(0);
    expect(parseTimeOfDay('08:30')).toBe(510);
    expect(parseTimeOfDay('24:00')).toBe(1440);
  });
  it.each(['8:00', '24:01', '12:60', '25:00', 'noon'])('refuses %s', (s) => {
    expect(() => parseTimeOfDay(s)).toThrow(/expected "HH:MM"/);
  });
});

describe('compileCalendar', () => {
  const office = compileCalendar({
    time_zone: 'UTC',
    default_interval_ms: 5000,
    windows: [{ name: 'office', days: 'mon-fri', from: '08:00', to: '20:00', interval_ms: 500 }],
  });

  it('uses the window inside it and the default outside, edges included/excluded', () => {
    // 2026-03-02 is a Monday.
    expect(office.intervalAt(utc('2026-03-02T07:59:59'))).toBe(5000);
    expect(office.intervalAt(utc('2026-03-02T08:00:00'))).toBe(500);
    expect(office.intervalAt(utc('2026-03-02T19:59:59'))).toBe(500);
    expect(office.intervalAt(utc('2026-03-02T20:00:00'))).toBe(5000);
    expect(office.windowAt(utc('2026-03-02T12:00:00'))?.name).toBe('office');
    // Saturday noon: idle.
    expect(office.intervalAt(utc('2026-03-07T12:00:00'))).toBe(5000);
    expect(office.windowAt(utc('2026-03-07T12:00:00'))).toBeUndefined();
  });

  it('runs a window past midnight on the day it starts', () => {
    const night = compileCalendar({
      time_zone: 'UTC',
      default_interval_ms: 4000,
      windows: [{ days: 'sat', from: '22:00', to: '02:00', interval_ms: 1000 }],
    });
    expect(night.intervalAt(utc('2026-03-07T23:00:00'))).toBe(1000); // Saturday evening
    expect(night.intervalAt(utc('2026-03-08T01:59:00'))).toBe(1000); // Sunday early morning
    expect(night.intervalAt(utc('2026-03-08T02:00:00'))).toBe(4000);
    expect(night.intervalAt(utc('2026-03-08T23:00:00'))).toBe(4000); // Sunday evening: not a window day
    expect(night.intervalAt(utc('2026-03-07T01:00:00'))).toBe(4000); // Saturday early: belongs to Friday
  });

  it('lets the shortest interval win where windows overlap, whatever their order', () => {
    const windows = [
      { days: 'daily', from: '00:00', to: '24:00', interval_ms: 2000 },
      { days: 'mon', from: '09:00', to: '10:00', interval_ms: 200 },
    ];
    for (const w of [windows, [...windows].reverse()]) {
      const c = compileCalendar({ time_zone: 'UTC', default_interval_ms: 9000, windows: w });
      expect(c.intervalAt(utc('2026-03-02T09:30:00'))).toBe(200);
      expect(c.intervalAt(utc('2026-03-02T10:30:00'))).toBe(2000);
    }
  });

  it('reads wall-clock time in the configured IANA zone, across daylight saving', () => {
    const paris = compileCalendar({
      time_zone: 'Europe/Paris',
      default_interval_ms: 5000,
      windows: [{ days: 'mon-fri', from: '08:00', to: '20:00', interval_ms: 500 }],
    });
    // Winter (UTC+1): 07:30 UTC is 08:30 in Paris.
    expect(paris.intervalAt(utc('2026-03-02T07:30:00'))).toBe(500);
    expect(paris.intervalAt(utc('2026-03-02T06:30:00'))).toBe(5000);
    // Summer (UTC+2): 06:30 UTC is 08:30 in Paris, 18:30 UTC is 20:30.
    expect(paris.intervalAt(utc('2026-07-06T06:30:00'))).toBe(500);
    expect(paris.intervalAt(utc('2026-07-06T18:30:00'))).toBe(5000);
    // Friday 23:30 UTC is already Saturday in Tokyo.
    const tokyo = compileCalendar({
      time_zone: 'Asia/Tokyo',
      default_interval_ms: 5000,
      windows: [{ days: 'sat', from: '00:00', to: '24:00', interval_ms: 700 }],
    });
    expect(tokyo.intervalAt(utc('2026-03-06T23:30:00'))).toBe(700);
  });

  it('names the key and the expected value in every validation error', () => {
    const bad = (over: object, re: RegExp) => {
      const cfg = { time_zone: 'UTC', default_interval_ms: 1000, windows: [], ...over };
      let err: unknown;
      try {
        compileCalendar(cfg, 'failover.calendar');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(re);
    };
    const w = { days: 'mon', from: '08:00', to: '09:00', interval_ms: 100 };
    bad({ time_zone: 'Mars/Olympus' }, /^failover\.calendar\.time_zone: "Mars\/Olympus" is not a time zone/);
    bad({ default_interval_ms: 10 }, /^failover\.calendar\.default_interval_ms: expected an integer of at least 50/);
    bad({ windows: [w, { ...w, days: 'funday' }] }, /^failover\.calendar\.windows\[1\]\.days: "funday" is not a day/);
    bad({ windows: [{ ...w, from: '8am' }] }, /^failover\.calendar\.windows\[0\]\.from: "8am" is not a time/);
    bad({ windows: [{ ...w, to: '08:00' }] }, /windows\[0\]\.to: equals from \("08:00"\)/);
    bad({ windows: [{ ...w, from: '24:00' }] }, /windows\[0\]\.from: expected a time before "24:00"/);
    bad({ windows: [{ ...w, interval_ms: 1.5 }] }, /windows\[0\]\.interval_ms: expected an integer/);
  });

  it('constantCalendar gives one interval at every instant', () => {
    const c = constantCalendar(750);
    expect(c.intervalAt(0)).toBe(750);
    expect(c.intervalAt(utc('2026-03-02T12:00:00'))).toBe(750);
  });
});

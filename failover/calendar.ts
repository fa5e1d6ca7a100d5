/**
 * The busy/idle calendar of the heartbeat: how often a healthy primary is probed at a given instant.
 *
 *   time_zone: Europe/Paris            # "UTC" (default) or any IANA zone known to Intl
 *   default_interval_ms: 5000          # outside every window (idle hours)
 *   windows:
 *     - { name: office, days: mon-fri, from: "08:00", to: "20:00", interval_ms: 500 }
 *     - { days: sat, from: "22:00", to: "02:00", interval_ms: 1000 }   # past midnight: starts Saturday
 *
 * `days`: "mon-fri", "sat,sun", "fri-mon" (wraps), "mon,wed-fri", "daily". `from`/`to`: "HH:MM", 24-hour,
 * `to` may be "24:00"; a window with `to` earlier than `from` runs past midnight and belongs to the day it
 * starts on. When windows overlap, the shortest interval wins (order never matters). Wall-clock times are
 * read in the configured zone through Intl, so daylight-saving changes follow the zone's rules.
 * Pure: no timers, the caller passes the instant.
 */
import { ConfigError } from '../core/errors.ts';

export interface CalendarWindowConfig {
  name?: string | undefined;
  days: string;
  from: string;
  to: string;
  interval_ms: number;
}

export interface CalendarConfig {
  time_zone: string;
  default_interval_ms: number;
  windows: readonly CalendarWindowConfig[];
}

export interface CalendarWindow {
  readonly name: string;
  /** Bit d set (0 = Sunday … 6 = Saturday) when the window starts on that weekday. */
  readonly days: number;
  readonly fromMin: number;
  readonly toMin: number;
  readonly intervalMs: number;
}

export interface Calendar {
  readonly timeZone: string;
  readonly defaultIntervalMs: number;
  readonly windows: readonly CalendarWindow[];
  /** The probe interval at instant `atMs` (ms since the epoch). */
  intervalAt(atMs: number): number;
  /** The window in force at `atMs` (the one whose interval applies), or undefined for the default. */
  windowAt(atMs: number): CalendarWindow | undefined;
}

const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
const MIN_INTERVAL_MS = 50;

/** Weekday index of a three-letter name, or -1. */
function dayIndex(s: string): number {
  return (DAY_NAMES as readonly string[]).indexOf(s);
}

/** "mon-fri", "sat,sun", "fri-mon", "daily" → a 7-bit mask. Throws a message naming the expected form. */
export function parseDays(spec: string): number {
  const s = spec.trim().toLowerCase();
  if (s === 'daily' || s === '*') return 0x7f;
  let mask = 0;
  for (const part of s.split(',')) {
    const p = part.trim();
    const range = /^([a-z]{3})-([a-z]{3})$/.exec(p);
    if (range) {
      const a = dayIndex(range[1] ?? '');
      const b = dayIndex(range[2] ?? '');
      if (a < 0 || b < 0) throw new Error(`"${p}" is not a day range (expected e.g. "mon-fri")`);
      for (let d = a; ; d = (d + 1) % 7) {
        mask |= 1 << d;
        if (d === b) break;
      }
      continue;
    }
    const d = dayIndex(p);
    if (d < 0) throw new Error(`"${p}" is not a day (expected mon, tue, wed, thu, fri, sat, sun, a range or "daily")`);
    mask |= 1 << d;
  }
  return mask;
}

/** "HH:MM" → minutes since midnight, 0..1440 ("24:00" allowed). */
export function parseTimeOfDay(s: string): number {
  const m = /^(\d{2}):(\d{2})$/.exec(s);
  const h = Number(m?.[1]);
  const min = Number(m?.[2]);
  if (!m || h > 24 || min > 59 || (h === 24 && min !== 0)) {
    throw new Error(`"${s}" is not a time of day (expected "HH:MM" from "00:00" to "24:00")`);
  }
  return h * 60 + min;
}

/** Throws a RangeError-derived message when the zone is unknown to this Node's Intl. */
function zoneFormatter(zone: string): Intl.DateTimeFormat {
  try {
    return new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
    });
  } catch {
    throw new Error(`"${zone}" is not a time zone (expected "UTC" or an IANA name such as "Europe/Paris")`);
  }
}

/** Weekday (0 = Sunday) and minute of the day of `atMs` in the formatter's zone. */
export function localTime(fmt: Intl.DateTimeFormat, atMs: number): { day: number; minute: number } {
  let day = -1;
  let hour = 0;
  let minute = 0;
  for (const p of fmt.formatToParts(atMs)) {
    if (p.type === 'weekday') day = dayIndex(p.value.toLowerCase());
    else if (p.type === 'hour') hour = Number(p.value);
    else if (p.type === 'minute') minute = Number(p.value);
  }
  return { day, minute: hour * 60 + minute };
}

function covers(w: CalendarWindow, day: number, minute: number): boolean {
  if (w.fromMin < w.toMin) return (w.days & (1 << day)) !== 0 && minute >= w.fromMin && minute < w.toMin;
  // Past midnight: the evening part belongs to `day`, the early-morning part to the day before.
  if (minute >= w.fromMin) return (w.days & (1 << day)) !== 0;
  const prev = (day + 6) % 7;
  return minute < w.toMin && (w.days & (1 << prev)) !== 0;
}

/**
 * Validates and compiles a calendar. Errors are ConfigErrors whose message starts with the key path under
 * `where` (e.g. "failover.calendar.windows[1].from: …").
 */
export function compileCalendar(cfg: CalendarConfig, where = 'calendar'): Calendar {
  const fail = (key: string, msg: string): never => {
    throw new ConfigError(`${where}.${key}: ${msg}`, { key: `${where}.${key}` });
  };
  const attempt = <T>(key: string, fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      return fail(key, (err as Error).message);
    }
  };
  const fmt = attempt('time_zone', () => zoneFormatter(cfg.time_zone));
  const checkInterval = (key: string, v: number): void => {
    if (!Number.isInteger(v) || v < MIN_INTERVAL_MS) fail(key, `expected an integer of at least ${MIN_INTERVAL_MS} ms`);
  };
  checkInterval('default_interval_ms', cfg.default_interval_ms);
  const windows = cfg.windows.map((w, i): CalendarWindow => {
    const key = `windows[${i}]`;
    const days = attempt(`${key}.days`, () => parseDays(w.days));
    const fromMin = attempt(`${key}.from`, () => parseTimeOfDay(w.from));
    const toMin = attempt(`${key}.to`, () => parseTimeOfDay(w.to));
    if (fromMin === toMin) fail(`${key}.to`, `equals from ("${w.from}"): expected a later time, or "24:00"`);
    if (fromMin === 1440) fail(`${key}.from`, 'expected a time before "24:00"');
    checkInterval(`${key}.interval_ms`, w.interval_ms);
    return { name: w.name ?? `windows[${i}]`, days, fromMin, toMin, intervalMs: w.interval_ms };
  });

  const windowAt = (atMs: number): CalendarWindow | undefined => {
    const { day, minute } = localTime(fmt, atMs);
    let best: CalendarWindow | undefined;
    for (const w of windows) {
      if (covers(w, day, minute) && (best === undefined || w.intervalMs < best.intervalMs)) best = w;
    }
    return best;
  };
  return {
    timeZone: cfg.time_zone,
    defaultIntervalMs: cfg.default_interval_ms,
    windows,
    windowAt,
    intervalAt: (atMs) => windowAt(atMs)?.intervalMs ?? cfg.default_interval_ms,
  };
}

/** A calendar with no windows: the same interval at every instant. */
export function constantCalendar(intervalMs: number): Calendar {
  return compileCalendar({ time_zone: 'UTC', default_interval_ms: intervalMs, windows: [] });
}

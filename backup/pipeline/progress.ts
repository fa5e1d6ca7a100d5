/**
 * Progress of a backup or restore stream: bytes, rate and ETA. ProgressMeter turns byte counts into figures
 * (pure, the clock injected); progressReporter shows them — a bar redrawn in place on a terminal, otherwise one
 * log line every few seconds (and one at the end), so a job's log says how it went without flooding.
 */
import type { Logger } from 'pino';

export interface Progress {
  /** Plaintext bytes through the pipeline so far. */
  readonly bytes: number;
  /** Sealed bytes handed to (or read from) the store so far. */
  readonly stored: number;
  /** The expected plaintext total, when known (a datadir size): gives percent and ETA. */
  readonly total: number | undefined;
  readonly elapsedMs: number;
  /** Plaintext bytes per second over the run so far. */
  readonly rate: number;
  readonly etaSeconds: number | undefined;
  readonly done: boolean;
}

export class ProgressMeter {
  readonly #total: number | undefined;
  readonly #now: () => number;
  readonly #t0: number;

  constructor(total?: number, now: () => number = Date.now) {
    this.#total = total;
    this.#now = now;
    this.#t0 = now();
  }

  at(bytes: number, stored: number, done = false): Progress {
    const elapsedMs = Math.max(0, this.#now() - this.#t0);
    const rate = elapsedMs > 0 ? (bytes * 1000) / elapsedMs : 0;
    const left = this.#total === undefined ? undefined : Math.max(0, this.#total - bytes);
    const etaSeconds = done ? 0 : left !== undefined && rate > 0 ? left / rate : undefined;
    return { bytes, stored, total: this.#total, elapsedMs, rate, etaSeconds, done };
  }
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${UNITS[u]}`;
}

function formatSeconds(s: number): string {
  const t = Math.round(s);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = String(t % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/** `12.0 MiB / 40.0 MiB (30%) at 8.0 MiB/s, ETA 0:04` (no total: no percent, no ETA). */
export function formatProgress(p: Progress): string {
  const of =
    p.total === undefined ? '' : ` / ${formatBytes(p.total)} (${Math.floor((100 * p.bytes) / Math.max(p.total, 1))}%)`;
  const eta = p.done
    ? `, took ${formatSeconds(p.elapsedMs / 1000)}`
    : p.etaSeconds === undefined
      ? ''
      : `, ETA ${formatSeconds(p.etaSeconds)}`;
  return `${formatBytes(p.bytes)}${of} at ${formatBytes(p.rate)}/s${eta}`;
}

/** A `[#####-----]` bar of `width` cells (a spinner-like `[   <=>   ]` position when the total is unknown). */
export function renderBar(p: Progress, width = 30): string {
  if (p.total === undefined || p.total <= 0) {
    const at = p.done ? width - 3 : Math.floor(p.elapsedMs / 250) % (width - 2);
    return `[${' '.repeat(at)}<=>${' '.repeat(Math.max(0, width - at - 3))}]`;
  }
  const full = Math.min(width, Math.floor((width * p.bytes) / p.total));
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}]`;
}

export interface ReporterOptions {
  /** What is moving (`backup nightly-full 20261206T0200`). */
  readonly label: string;
  readonly log: Logger;
  /** The terminal, if any: a bar is drawn there when it is a TTY. Default process.stderr. */
  readonly stream?: NodeJS.WriteStream;
  /** Log line interval when not on a TTY; default 5000 ms. */
  readonly everyMs?: number;
  readonly now?: () => number;
}

/** A progress callback for the writer/reader: a bar on a TTY, a log line every few seconds otherwise. */
export function progressReporter(o: ReporterOptions): (p: Progress) => void {
  const stream = o.stream ?? process.stderr;
  const now = o.now ?? Date.now;
  const tty = stream.isTTY === true;
  const every = tty ? 200 : (o.everyMs ?? 5000);
  let last = Number.NEGATIVE_INFINITY;
  return (p) => {
    const t = now();
    if (!p.done && t - last < every) return;
    last = t;
    if (tty) {
      stream.write(`\r${o.label} ${renderBar(p)} ${formatProgress(p)}\x1b[K${p.done ? '\n' : ''}`);
    } else {
      o.log.info(
        { bytes: p.bytes, stored: p.stored, rate: Math.round(p.rate), etaSeconds: p.etaSeconds, done: p.done },
        `${o.label}: ${formatProgress(p)}`,
      );
    }
  };
}

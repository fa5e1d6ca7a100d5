import { PassThrough } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { formatBytes, formatProgress, ProgressMeter, progressReporter, renderBar } from './progress.ts';

const MiB = 1 << 20;

describe('progress', () => {
  it('computes rate and ETA from the bytes and the clock', () => {
    let t = 1000;
    const m = new ProgressMeter(100 * MiB, () => t);
    t += 2000;
    const p = m.at(20 * MiB, 5 * MiB);
    expect(p.rate).toBe(10 * MiB);
    expect(p.etaSeconds).toBe(8);
    expect(formatProgress(p)).toBe('20.0 MiB / 100.0 MiB (20%) at 10.0 MiB/s, ETA 0:08');
    expect(renderBar(p, 10)).toBe('[##--------]');
    expect(formatProgress(m.at(100 * MiB, 0, true))).toContain('took 0:02');
    expect(new ProgressMeter(undefined, () => t).at(5, 5).etaSeconds).toBeUndefined();
    expect(formatBytes(1536)).toBe('1.5 KiB');
  });

  it('draws a bar on a TTY and logs a line every few seconds otherwise', () => {
    let t = 0;
    const m = new ProgressMeter(10 * MiB, () => t);
    const tty = Object.assign(new PassThrough(), { isTTY: true }) as unknown as NodeJS.WriteStream;
    let drawn = '';
    (tty as unknown as PassThrough).on('data', (b: Buffer) => {
      drawn += b.toString();
    });
    const bar = progressReporter({ label: 'backup x', log: pino({ level: 'silent' }), stream: tty, now: () => t });
    for (t = 0; t <= 1000; t += 50) bar(m.at(t * 1000, 0));
    bar(m.at(10 * MiB, 0, true));
    expect(drawn.split('\r').length - 1).toBe(7); // every 200 ms over 1 s, plus the end
    expect(drawn).toContain('\rbackup x [');
    expect(drawn.endsWith('\n')).toBe(true);

    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (s: string) => lines.push(s) });
    const notty = Object.assign(new PassThrough(), { isTTY: false }) as unknown as NodeJS.WriteStream;
    const rep = progressReporter({ label: 'backup y', log, stream: notty, everyMs: 5000, now: () => t });
    for (t = 0; t <= 12_000; t += 100) rep(m.at(t * 100, 0));
    rep(m.at(10 * MiB, 0, true));
    expect(lines.length).toBe(4); // at 0, 5 s, 10 s, and the end
    expect(JSON.parse(lines.at(-1) ?? '{}')).toMatchObject({
      done: true,
      msg: expect.stringContaining('backup y: 10.0 MiB'),
    });
  });
});

/**
 * The journal a lagging standby holds, and what happens as it grows (ship.cap_bytes, alarm_at, at_cap).
 *
 * retainedBytes: the bytes of the segments from the one holding the standby's next LSN to the head. Segment
 * granularity: at most one segment (journal.segment_bytes) more than the exact figure, which is what retention
 * can really free anyway (it deletes whole segments).
 *
 * CapGate: the standbys that currently hold capture (at_cap stop-capture). Capture pauses while it is not empty.
 *
 * capCheck: the ship loop's round (ship-loop.ts, once a second) against what the standby holds now: the alarm,
 * the drop, the capture gate, holding the journal again; it keeps the level and figures in the link's state.
 */
import { stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import { type CursorStore, listSegments, segmentPath } from '../journal/index.ts';
import type { StandbyLink } from './ship-link.ts';
import { type ShipCursor, setDropped } from './ship-state.ts';

export async function retainedBytes(dir: string, ackedLsn: bigint): Promise<number> {
  const segs = await listSegments(dir);
  const next = ackedLsn + 1n;
  let from = 0;
  for (let i = 0; i < segs.length; i++) if ((segs[i] as bigint) <= next) from = i;
  let total = 0;
  for (const first of segs.slice(from)) {
    try {
      total += (await stat(segmentPath(dir, first))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // deleted by retention meanwhile
    }
  }
  return total;
}

export type CapLevel = 'ok' | 'alarm' | 'cap';

/** Where `bytes` stands against the cap. */
export function capLevel(bytes: number, cap: number, alarmAt: number): CapLevel {
  if (bytes >= cap) return 'cap';
  return bytes >= cap * alarmAt ? 'alarm' : 'ok';
}

export class CapGate {
  private readonly holders = new Map<string, string>();

  hold(standby: string, why: string): void {
    this.holders.set(standby, why);
  }

  release(standby: string): void {
    this.holders.delete(standby);
  }

  /** Why capture must pause, or null. */
  blocked(): string | null {
    const first = this.holders.entries().next();
    return first.done ? null : `standby ${first.value[0]} ${first.value[1]}`;
  }
}

const fmtMb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

/** What a ship loop's cap round works with besides the link: its journal, the gate, the standby's cursor. */
export interface CapContext {
  readonly config: Config;
  /** The journal directory. */
  readonly dir: string;
  readonly gate: CapGate;
  readonly log: Logger;
  /** The standby's cursor as the loop last wrote it, in `cursors` under the name `cname` (ship:<standby>). */
  readonly cursor: ShipCursor;
  readonly cursors: CursorStore;
  readonly cname: string;
}

/** The cap against what the standby holds now: the alarm, the drop, the capture gate, holding the journal again. */
export async function capCheck(c: CapContext, link: StandbyLink): Promise<void> {
  const { config, dir, gate, log: slog } = c;
  const name = link.standby;
  const retained = await retainedBytes(dir, link.acked.unitLsn);
  link.retainedBytes = retained;
  const next = capLevel(retained, config.ship.cap_bytes, config.ship.alarm_at);
  const pct = Math.round((100 * retained) / config.ship.cap_bytes);
  if (next !== 'ok' && link.level === 'ok') {
    slog.warn(
      { retainedBytes: retained, capBytes: config.ship.cap_bytes },
      `standby ${name} holds ${fmtMb(retained)} of journal, ${pct} % of ship.cap_bytes ` +
        `(${fmtMb(config.ship.cap_bytes)}); at the cap: ${config.ship.at_cap}`,
    );
  }
  if (next === 'cap' && config.ship.at_cap === 'drop-standby' && !link.dropped) {
    link.dropped = {
      at: new Date().toISOString(),
      reason: `held ${retained} bytes of journal, over ship.cap_bytes ${config.ship.cap_bytes}`,
      ackedLsn: link.acked.unitLsn.toString(),
      retainedBytes: retained,
    };
    await setDropped(dir, name, link.dropped);
    await c.cursors.remove(c.cname);
    slog.error(
      { ackedLsn: String(link.acked.unitLsn) },
      `standby ${name} reached ship.cap_bytes: it no longer holds the journal (at_cap drop-standby). It still ` +
        'catches up while the journal has what it needs; once retention removed that, it needs a rebaseline',
    );
  }
  if (next === 'cap' && config.ship.at_cap === 'stop-capture' && link.level !== 'cap') {
    gate.hold(name, `holds ${fmtMb(retained)} of journal, at ship.cap_bytes (at_cap stop-capture)`);
    slog.error(`standby ${name} reached ship.cap_bytes: capture pauses until it is below the alarm level`);
  }
  if (next === 'ok') {
    gate.release(name);
    const oldest = (await listSegments(dir))[0];
    if (link.dropped && oldest !== undefined && link.acked.unitLsn + 1n >= oldest) {
      await c.cursor.sync(link.acked.unitLsn, true);
      await setDropped(dir, name, null);
      link.dropped = null;
      slog.info(`standby ${name} is below the alarm level again: it holds the journal again`);
    }
  }
  link.level = next;
}

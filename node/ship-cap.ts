/**
 * The journal a lagging standby holds, and what happens as it grows (ship.cap_bytes, alarm_at, at_cap).
 *
 * retainedBytes: the bytes of the segments from the one holding the standby's next LSN to the head. Segment
 * granularity: at most one segment (journal.segment_bytes) more than the exact figure, which is what retention
 * can really free anyway (it deletes whole segments).
 *
 * CapGate: the standbys that currently hold capture (at_cap stop-capture). Capture pauses while it is not empty.
 */
import { stat } from 'node:fs/promises';
import { listSegments, segmentPath } from '../journal/index.ts';

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

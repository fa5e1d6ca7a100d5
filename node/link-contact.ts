/**
 * When the primary site last heard from each standby over its ship link (tcp: any bytes — ACKs, heartbeats),
 * on this process's monotonic clock. The ship loops note it; the primary's guard (failover-primary.ts), in the
 * same process, counts its isolation from it: the link's own "dead" verdict comes 3 heartbeats later, which is
 * what made the guard fence late (issue #17).
 */
const heard = new Map<string, number>();

export function noteHeard(standby: string, at = performance.now()): void {
  heard.set(standby, at);
}

/** The latest time any of `standbys` was heard from (performance.now() clock), or null. */
export function lastHeard(standbys: readonly string[]): number | null {
  let at: number | null = null;
  for (const s of standbys) {
    const t = heard.get(s);
    if (t !== undefined && (at === null || t > at)) at = t;
  }
  return at;
}

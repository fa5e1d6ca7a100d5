/**
 * The executed-GTID state per replication domain ("0-1-42,1-3-7", MariaDB flavour) that the transaction assembler
 * (assembler.ts) records in each commit position: seeded from the resume position's gtid, advanced by each group's
 * GTID. MySQL GTIDs (uuid:n), or no seed, report the transaction's own GTID. Pure.
 */
export class GtidState {
  private readonly domains = new Map<string, string>();
  readonly seeded: boolean;
  constructor(seed: string | undefined) {
    this.seeded = seed !== undefined && seed !== '';
    for (const g of (seed ?? '').split(',')) {
      const d = /^(\d+)-\d+-\d+$/.exec(g.trim());
      if (d?.[1]) this.domains.set(d[1], g.trim());
    }
  }

  /** Records `gtid` as its domain's latest; returns the state to store with it. */
  add(gtid: string): string {
    const d = /^(\d+)-\d+-\d+$/.exec(gtid);
    if (!d?.[1] || !this.seeded) return gtid; // MySQL uuid:n, or no seed: report the transaction's own GTID
    this.domains.set(d[1], gtid);
    return [...this.domains.entries()]
      .sort((a, b) => Number(a[0]) - Number(b[0]))
      .map(([, g]) => g)
      .join(',');
  }
}

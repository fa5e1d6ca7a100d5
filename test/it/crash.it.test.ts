import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { crashScenario } from '../fixtures/crash.ts';
import { stopInstance } from '../fixtures/mariadb.ts';

afterAll(() => {
  for (const n of ['crashsrc', 'crashrep', 'crashparsrc', 'crashparrep']) stopInstance(n);
});

/** Parallel apply, 4 sessions, units of at most 4 source transactions: kills land mid-unit and between commits. */
const PARALLEL = '    parallel:\n      workers: 4\n    batch:\n      max_transactions: 4\n';

test.each([
  { apply: 'serial', name: 'crash', ports: [3431, 3432] },
  { apply: 'parallel (4 workers)', name: 'crashpar', ports: [3433, 3434], targetYaml: PARALLEL },
])(
  'SIGKILL of tidemark run at 20 random moments under a multi-table workload loses and duplicates nothing: $apply apply',
  async ({ name, ports, targetYaml }) => {
    const seed = Number(process.env['TIDEMARK_CRASH_SEED'] ?? Date.now() % 100000);
    const res = await crashScenario({
      name,
      sourcePort: ports[0]!,
      replicaPort: ports[1]!,
      kills: Number(process.env['TIDEMARK_CRASH_KILLS'] ?? 20),
      seed,
      ...(targetYaml ? { targetYaml } : {}),
      log: (l) => console.log(`[${name} seed=${seed}] ${l}`),
    });
    expect(res.transactions).toBeGreaterThan(400);
    // The replica holds exactly the source's last committed transaction…
    expect(res.replicaGtid).toBe(res.sourceGtid);
    // …and a chunked checksum comparison says every table is equal.
    expect(res.verifyCode, JSON.stringify(res.verify)).toBe(0);
    expect((res.verify as { equal?: boolean }).equal).toBe(true);
    // The parallel applier really ran (the serial one never logs this).
    const log = readFileSync(join(res.topology.dir, 'tidemark.log'), 'utf8');
    expect(log.includes('"parallel apply sessions open"')).toBe(targetYaml !== undefined);
  },
  600_000,
);

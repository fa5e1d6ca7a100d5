import { afterAll, expect, test } from 'vitest';
import { crashScenario } from '../fixtures/crash.ts';
import { stopInstance } from '../fixtures/mariadb.ts';

afterAll(() => {
  stopInstance('crashsrc');
  stopInstance('crashrep');
});

test('SIGKILL of tidemark run at 20 random moments under a multi-table workload loses and duplicates nothing', async () => {
  const seed = Number(process.env['TIDEMARK_CRASH_SEED'] ?? Date.now() % 100000);
  const res = await crashScenario({
    name: 'crash',
    sourcePort: 3431,
    replicaPort: 3432,
    kills: Number(process.env['TIDEMARK_CRASH_KILLS'] ?? 20),
    seed,
    log: (l) => console.log(`[crash seed=${seed}] ${l}`),
  });
  expect(res.transactions).toBeGreaterThan(400);
  // The replica holds exactly the source's last committed transaction…
  expect(res.replicaGtid).toBe(res.sourceGtid);
  // …and a chunked checksum comparison says every table is equal.
  expect(res.verifyCode, JSON.stringify(res.verify)).toBe(0);
  expect((res.verify as { equal?: boolean }).equal).toBe(true);
}, 600_000);

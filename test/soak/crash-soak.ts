/**
 * Soak: the CI crash scenario with many more kills. Usage:
 *   npm run soak -- [--kills 200] [--seed N]
 * Prints one JSON line with the result; exits 1 unless the replica caught up and verify said equal.
 */
import { parseArgs } from 'node:util';
import { crashScenario } from '../fixtures/crash.ts';
import { stopInstance } from '../fixtures/mariadb.ts';

const { values } = parseArgs({ options: { kills: { type: 'string', default: '200' }, seed: { type: 'string' } } });
const seed = Number(values.seed ?? Date.now() % 100000);
try {
  const r = await crashScenario({
    name: 'soak',
    sourcePort: 3441,
    replicaPort: 3442,
    kills: Number(values.kills),
    seed,
    log: (l) => console.error(l),
  });
  const ok = r.replicaGtid === r.sourceGtid && r.verifyCode === 0;
  console.log(
    JSON.stringify({
      ok,
      seed,
      kills: r.kills,
      transactions: r.transactions,
      source: r.sourceGtid,
      replica: r.replicaGtid,
    }),
  );
  process.exitCode = ok ? 0 : 1;
} finally {
  stopInstance('soaksrc');
  stopInstance('soakrep');
}

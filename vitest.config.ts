import { defineConfig } from 'vitest/config';

// TIDEMARK_IT_PARALLEL=N runs N integration files at a time (compose/local/test.sh does, for the files that do not
// measure time; each file starts its own servers on its own ports). Default: one at a time.
const itParallel = Math.max(1, Number(process.env['TIDEMARK_IT_PARALLEL'] ?? '1') || 1);

// Unit tests sit beside the code (*.test.ts) and need no server. Integration tests live in test/it
// (*.it.test.ts) and use real MariaDB instances started by compose/local/mariadb.sh through test/fixtures.
export default defineConfig({
  test: {
    ...(itParallel > 1 ? { maxWorkers: itParallel } : {}),
    projects: [
      {
        test: {
          name: 'unit',
          include: [
            '{core,record,journal,mysql,postgres,engine,capture,ship,apply,rollback,failover,backup,config,node,cli,scripts}/**/*.test.ts',
          ],
          exclude: ['**/node_modules/**', '**/*.it.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'it',
          include: ['test/it/**/*.it.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 180_000,
          // Integration files start their own servers on their own ports: one at a time unless asked (above).
          fileParallelism: itParallel > 1,
        },
      },
    ],
  },
});

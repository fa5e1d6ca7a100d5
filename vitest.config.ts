import { defineConfig } from 'vitest/config';

// Unit tests sit beside the code (*.test.ts) and need no server. Integration tests live in test/it
// (*.it.test.ts) and use real MariaDB instances started by compose/local/mariadb.sh through test/fixtures.
export default defineConfig({
  test: {
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
          // Integration files start their own servers on their own ports; run them one at a time on 2 cores.
          fileParallelism: false,
        },
      },
    ],
  },
});

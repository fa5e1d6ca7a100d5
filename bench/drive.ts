/**
 * Drives the shop workload against a MariaDB server and shows progress once a second.
 *   node bench/drive.ts --port 3307 [--seconds 8 | --transactions N] [--seed 1] [--workers 4] [--setup]
 * --setup creates the shop schema first. Connects as root (the demo's admin account) over 127.0.0.1.
 */
import { parseArgs } from 'node:util';
import mysql from 'mysql2/promise';
import { runWorkload, SHOP_SCHEMA } from './workload.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '3307' },
    seconds: { type: 'string' },
    transactions: { type: 'string' },
    seed: { type: 'string', default: '1' },
    workers: { type: 'string', default: '4' },
    db: { type: 'string', default: 'shop' },
    password: { type: 'string', default: process.env['TIDEMARK_ROOT_PW'] ?? 'tidemark-root' },
    setup: { type: 'boolean', default: false },
  },
});
const connect = () =>
  mysql.createConnection({ host: '127.0.0.1', port: Number(values.port), user: 'root', password: values.password });

if (values.setup) {
  const c = await connect();
  for (const s of SHOP_SCHEMA(values.db)) await c.query(s);
  await c.end();
}
let last = 0;
let count = 0;
const timer = setInterval(() => {
  process.stdout.write(`  workload: ${count} transactions committed (${count - last}/s)\n`);
  last = count;
}, 1000);
try {
  const res = await runWorkload(connect, {
    db: values.db,
    seed: Number(values.seed),
    workers: Number(values.workers),
    ...(values.seconds ? { durationMs: Number(values.seconds) * 1000 } : {}),
    ...(values.transactions ? { transactions: Number(values.transactions) } : {}),
    onCommit: (n) => {
      count = n;
    },
  });
  process.stdout.write(
    `  workload done: ${res.committed} transactions in ${(res.elapsedMs / 1000).toFixed(1)} s` +
      (res.failed ? ` (${res.failed} retried after deadlock)` : '') +
      '\n',
  );
} finally {
  clearInterval(timer);
}

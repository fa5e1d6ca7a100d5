/**
 * Benchmarks. Progress goes to stderr; the last line on stdout is one JSON object.
 *   npm run bench -- [spine] [--json] [--bulk-rows N] [--update-rows N] [--oltp-tx N] [--workers N] [--native-parallel N]
 *                   [--group-tx N]  (tidemark targets[].batch.max_transactions)
 *                   [--split]       (tidemark as `run --only capture` + `run --only apply`)
 *   npm run bench -- rewind [--json] [--rows N] [--changes N] [--index-dir D]
 *   npm run bench -- binlog-rows [--json] [--rows N]   (issue #15's evaluation: guarded SQL vs binary row events;
 *                                                       MariaDB on port 3895)
 *   npm run bench -- ship [--json] [--transports local,tcp,kafka,redis] [--rate TX_PER_S] [--warmup-s S]
 *                         [--measure-s S] [--ship-rows N] [--tx-rows N] [--apply-max-wait-ms N]
 *                                                                    (--json: nothing but the JSON line)
 *   npm run bench -- takeover [--json] [--runs N] [--partition-s S]                   (root: network namespaces)
 *   npm run bench -- backup [--json] [--size-mib N] [--pitr-tx N] [--archive-rate TX_PER_S] [--archive-s S]
 *                                                                    (sysbench-prepared datadir, kept between runs)
 *   npm run bench -- sysbench [--json] [--tables N] [--table-size N] [--time-s S]  [--threads N] [--native-parallel N] [--workers N]
 *                   [--fsync transaction|group]    (sysbench oltp_read_write; MariaDB on ports 3890-3892;
 *                   defaults 4 tables / 20000 rows / 30 s / 4 threads / 0 / transaction)
 *   npm run bench -- postgres [--json] [--bulk-rows N] [--update-rows N] [--oltp-tx N] [--rate TX_PER_S] [--lag-s S]
 *                   [--apply-sync-commit on|off] [--apply-max-wait-ms MS]
 *                   (PostgreSQL 15 on ports 5500-5502, TIDEMARK_BENCH_PG_PORT=base moves them; defaults
 *                   50000 / 25000 / 3000 / 2000 / 5)
 */
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    json: { type: 'boolean', default: false },
    // No defaults here: spine and postgres have their own (below).
    'bulk-rows': { type: 'string' },
    'update-rows': { type: 'string' },
    'oltp-tx': { type: 'string' },
    'lag-s': { type: 'string', default: '5' },
    'apply-sync-commit': { type: 'string', default: 'on' },
    // ship and postgres: the targets' batch.max_wait_ms; absent: the default.
    'apply-max-wait-ms': { type: 'string' },
    rows: { type: 'string', default: '100000' },
    changes: { type: 'string', default: '10000000' },
    'index-dir': { type: 'string', default: '/tmp/tidemark-bench-rewind' },
    transports: { type: 'string', default: 'local,tcp,kafka,redis' },
    rate: { type: 'string', default: '2000' },
    'warmup-s': { type: 'string', default: '3' },
    'measure-s': { type: 'string', default: '12' },
    'ship-rows': { type: 'string', default: '400000' },
    'tx-rows': { type: 'string', default: '1000' },
    runs: { type: 'string', default: '5' },
    'partition-s': { type: 'string', default: '10' },
    'size-mib': { type: 'string', default: '1024' },
    'pitr-tx': { type: 'string', default: '20000' },
    'archive-rate': { type: 'string', default: '2000' },
    'archive-s': { type: 'string', default: '20' },
    tables: { type: 'string', default: '4' },
    'table-size': { type: 'string', default: '20000' },
    'time-s': { type: 'string', default: '30' },
    threads: { type: 'string', default: '4' },
    'native-parallel': { type: 'string', default: '0' },
    workers: { type: 'string' },
    'group-tx': { type: 'string' },
    split: { type: 'boolean', default: false },
    fsync: { type: 'string', default: 'transaction' },
  },
});
const which = positionals[0] ?? 'spine';
const log = (s: string) => process.stderr.write(`bench: ${s}\n`);
let result: object;
if (which === 'spine') {
  const { benchSpine } = await import('./spine.ts');
  result = await benchSpine({
    bulkRows: Number(values['bulk-rows'] ?? '300000'),
    updateRows: Number(values['update-rows'] ?? '100000'),
    oltpTx: Number(values['oltp-tx'] ?? '20000'),
    workers: Number(values['workers'] ?? '1'),
    nativeParallel: Number(values['native-parallel']),
    ...(values['group-tx'] ? { groupTx: Number(values['group-tx']) } : {}),
    split: values.split === true,
    log,
  });
} else if (which === 'postgres') {
  const { benchPostgres } = await import('./postgres.ts');
  result = await benchPostgres({
    bulkRows: Number(values['bulk-rows'] ?? '50000'),
    updateRows: Number(values['update-rows'] ?? '25000'),
    oltpTx: Number(values['oltp-tx'] ?? '3000'),
    lagRate: Number(values.rate),
    lagSeconds: Number(values['lag-s']),
    applySyncCommit: values['apply-sync-commit'] === 'off' ? 'off' : 'on',
    ...(values['apply-max-wait-ms'] !== undefined ? { applyMaxWaitMs: Number(values['apply-max-wait-ms']) } : {}),
    // --json: quiet, the JSON line only.
    log: values.json ? () => {} : log,
  });
} else if (which === 'rewind') {
  const { benchRewind } = await import('./rewind.ts');
  result = await benchRewind({
    rows: Number(values.rows),
    changes: Number(values.changes),
    indexDir: values['index-dir'],
    log,
  });
} else if (which === 'ship') {
  const { benchShip, CONTENDERS } = await import('./ship.ts');
  const contenders = values.transports.split(',').filter((c) => c !== '');
  const unknown = contenders.filter((c) => !(CONTENDERS as readonly string[]).includes(c));
  if (unknown.length || contenders.length === 0) {
    process.stderr.write(`bench: --transports takes a list of ${CONTENDERS.join(', ')} (got "${values.transports}")\n`);
    process.exit(2);
  }
  result = await benchShip({
    contenders: contenders as (typeof CONTENDERS)[number][],
    rate: Number(values.rate),
    warmupS: Number(values['warmup-s']),
    measureS: Number(values['measure-s']),
    rows: Number(values['ship-rows']),
    txRows: Number(values['tx-rows']),
    applyMaxWaitMs: values['apply-max-wait-ms'] === undefined ? undefined : Number(values['apply-max-wait-ms']),
    // --json: quiet, the JSON line only.
    log: values.json ? () => {} : log,
  });
} else if (which === 'takeover') {
  const { benchTakeover } = await import('./takeover.ts');
  result = await benchTakeover({ runs: Number(values.runs), partitionS: Number(values['partition-s']), log });
} else if (which === 'backup') {
  const { benchBackup } = await import('./backup.ts');
  result = await benchBackup({
    sizeMib: Number(values['size-mib']),
    pitrTx: Number(values['pitr-tx']),
    archiveRate: Number(values['archive-rate']),
    archiveS: Number(values['archive-s']),
    log,
  });
} else if (which === 'binlog-rows') {
  const { benchBinlogRows } = await import('./binlog-rows.ts');
  result = await benchBinlogRows({ rows: Number(values.rows), rounds: 2, log });
} else if (which === 'sysbench') {
  const { benchSysbench } = await import('./sysbench.ts');
  result = await benchSysbench({
    tables: Number(values.tables),
    tableSize: Number(values['table-size']),
    timeS: Number(values['time-s']),
    threads: Number(values.threads),
    nativeParallel: Number(values['native-parallel']),
    fsync: values.fsync === 'group' ? 'group' : 'transaction',
    workers: Number(values['workers'] ?? '1'),
    log,
  });
} else {
  process.stderr.write(
    `bench: unknown benchmark "${which}" (available: spine, rewind, binlog-rows, ship, takeover, backup, postgres, sysbench)\n`,
  );
  process.exit(2);
}
if (!values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(result)}\n`);

/**
 * Benchmarks. Progress goes to stderr; the last line on stdout is one JSON object.
 *   npm run bench -- [spine] [--json] [--bulk-rows N] [--update-rows N] [--oltp-tx N]
 *   npm run bench -- rewind [--json] [--rows N] [--changes N] [--index-dir D]
 */
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    json: { type: 'boolean', default: false },
    'bulk-rows': { type: 'string', default: '300000' },
    'update-rows': { type: 'string', default: '100000' },
    'oltp-tx': { type: 'string', default: '20000' },
    rows: { type: 'string', default: '100000' },
    changes: { type: 'string', default: '10000000' },
    'index-dir': { type: 'string', default: '/tmp/tidemark-bench-rewind' },
  },
});
const which = positionals[0] ?? 'spine';
const log = (s: string) => process.stderr.write(`bench: ${s}\n`);
let result: object;
if (which === 'spine') {
  const { benchSpine } = await import('./spine.ts');
  result = await benchSpine({
    bulkRows: Number(values['bulk-rows']),
    updateRows: Number(values['update-rows']),
    oltpTx: Number(values['oltp-tx']),
    log,
  });
} else if (which === 'rewind') {
  const { benchRewind } = await import('./rewind.ts');
  result = await benchRewind({
    rows: Number(values.rows),
    changes: Number(values.changes),
    indexDir: values['index-dir'],
    log,
  });
} else {
  process.stderr.write(`bench: unknown benchmark "${which}" (available: spine, rewind)\n`);
  process.exit(2);
}
if (!values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(result)}\n`);

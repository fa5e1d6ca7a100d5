/**
 * Benchmarks. `npm run bench -- [spine] [--json] [--bulk-rows N] [--update-rows N] [--oltp-tx N]`
 * Progress goes to stderr; the last line on stdout is one JSON object.
 */
import { parseArgs } from 'node:util';
import { benchSpine } from './spine.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    json: { type: 'boolean', default: false },
    'bulk-rows': { type: 'string', default: '300000' },
    'update-rows': { type: 'string', default: '100000' },
    'oltp-tx': { type: 'string', default: '20000' },
  },
});
const which = positionals[0] ?? 'spine';
const log = (s: string) => process.stderr.write(`bench: ${s}\n`);
if (which !== 'spine') {
  process.stderr.write(`bench: unknown benchmark "${which}" (available: spine)\n`);
  process.exit(2);
}
const result = await benchSpine({
  bulkRows: Number(values['bulk-rows']),
  updateRows: Number(values['update-rows']),
  oltpTx: Number(values['oltp-tx']),
  log,
});
if (!values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(result)}\n`);

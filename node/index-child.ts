/**
 * The rollback index loop's child process (index-loop.ts spawns it through index-child.mjs): runs followIndex
 * and writes its log lines (pino JSON) to stdout, which the parent relays into its own log. Stops on
 * SIGTERM/SIGINT, and when the parent goes away (the IPC channel closes), so an index follower never outlives its
 * `run`.
 *
 *   node index-child.mjs <journal dir> <log level>
 */
import { pino } from 'pino';
import { followIndex } from './index-follow.ts';

const [journalDir, level = 'info'] = process.argv.slice(2);
if (!journalDir) {
  process.stderr.write('usage: index-child.mjs <journal dir> [log level]\n');
  process.exit(2);
}
const ac = new AbortController();
const stop = () => ac.abort();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', stop);
const log = pino({ level, base: null, timestamp: false }, pino.destination({ fd: 1, sync: true }));
await followIndex({ journalDir, log, signal: ac.signal });
process.disconnect?.();

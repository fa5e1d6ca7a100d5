/**
 * Child-process entry of the rollback index loop (index-loop.ts spawns it): runs followIndex and writes its log
 * lines (pino JSON) to stdout, which the parent relays into its own log. Stops on SIGTERM/SIGINT, and when the
 * parent goes away (the IPC channel closes), so an index follower never outlives its `run`.
 *
 *   node index-child.ts <journal dir> <log level>
 */
import { enableCompileCache } from 'node:module';

// The compile cache the CLI uses (cli/tidemark.ts): without it each follower start strips and compiles its ~60
// modules again, ~0.15 s of CPU (measured: 0.20 → 0.05 s user for the imports) taken from capture and apply just
// as a `run` starts. It covers modules loaded after this call, hence the dynamic imports.
enableCompileCache();
const { pino } = await import('pino');
const { followIndex } = await import('./index-follow.ts');

const [journalDir, level = 'info'] = process.argv.slice(2);
if (!journalDir) {
  process.stderr.write('usage: index-child.ts <journal dir> [log level]\n');
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

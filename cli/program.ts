/**
 * The `tidemark` program, started by cli/tidemark.mjs (the executable; see there for the Node flags and the
 * compile cache). Wires cli/main.ts to the process: argv, stdout/stderr, SIGINT/SIGTERM (first one asks commands
 * to stop gracefully through an AbortSignal, a second one exits at once) and the exit code.
 */
import { TidemarkError } from '../core/errors.ts';
import { reportError } from './commands/exit.ts';
import { main } from './main.ts';

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
/** After main() returns, give open handles this long to close before exiting anyway. */
const LINGER_MS = 5_000;

const debug = process.env['TIDEMARK_DEBUG'] === '1';
const stop = new AbortController();

for (const sig of SIGNALS) {
  process.on(sig, () => {
    if (stop.signal.aborted) {
      process.stderr.write(`tidemark: ${sig} again, exiting without a clean stop\n`);
      process.exit(sig === 'SIGINT' ? 130 : 143);
    }
    process.stderr.write(`tidemark: ${sig} received, stopping (send it again to exit at once)\n`);
    stop.abort(new TidemarkError(`stopped by ${sig}`, { code: 'STOPPED', context: { signal: sig } }));
  });
}

// Anything that escapes a command's own error handling still ends as one line and exit code 1.
const fatal = (err: unknown): void => {
  const report = reportError(err, { debug });
  process.stderr.write(report.text);
  process.exit(report.exitCode === 0 ? 1 : report.exitCode);
};
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);

// A command may wait on nothing but the stop signal; keep the event loop alive until main() settles.
const keepAlive = setInterval(() => {}, 1 << 30);
const io = { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: stop.signal };
const code = await main(process.argv.slice(2), io).finally(() => clearInterval(keepAlive));
process.exitCode = code;
setTimeout(() => {
  process.stderr.write(`tidemark: still busy ${LINGER_MS / 1000} s after finishing (open handles); exiting\n`);
  process.exit(code);
}, LINGER_MS).unref();

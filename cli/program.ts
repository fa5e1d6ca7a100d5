#!/usr/bin/env -S node --experimental-strip-types --no-warnings=ExperimentalWarning --max-semi-space-size=16 --max-old-space-size=160
/**
 * The `tidemark` executable. Wires cli/main.ts to the process: argv, stdout/stderr, SIGINT/SIGTERM (first one
 * asks commands to stop gracefully through an AbortSignal, a second one exits at once) and the exit code.
 * The shebang flags let Node 22.12+ run the TypeScript directly (Node 24 strips types by default) and bound the
 * V8 heap: by default V8 lets garbage grow to hundreds of MB on a machine with plenty of RAM before collecting,
 * which broke the < 256 MB RSS budget under bulk load (432 MB peak in the bulk benchmark) although what tidemark
 * retains is bounded. A 16 MB young generation and a 160 MB old space keep peak RSS near 200 MB at the same
 * speed. Run the file itself (`cli/tidemark.ts …`, or the `tidemark` bin), not `node cli/tidemark.ts`, to get them.
 */
import { enableCompileCache } from 'node:module';

// Node's on-disk compile cache (os.tmpdir()/node-compile-cache, or NODE_COMPILE_CACHE): type-stripped and
// compiled modules are reused by the next process, which halves start-up (0.36 s → 0.20 s for `--help`, measured
// on the 2-core bench machine) — every command pays it, `tidemark undo` and `run` included. It covers only
// modules loaded after this call, hence the dynamic imports below. A cache that cannot be written is skipped.
enableCompileCache();
const { TidemarkError } = await import('../core/errors.ts');
const { reportError } = await import('./commands/exit.ts');
const { main } = await import('./main.ts');

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

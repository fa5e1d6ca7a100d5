#!/usr/bin/env -S node --no-warnings=ExperimentalWarning --max-semi-space-size=16 --max-old-space-size=160
/**
 * The `tidemark` executable; the program itself is cli/program.ts.
 *
 * The shebang flags bound the V8 heap: by default V8 lets garbage grow to hundreds of MB on a machine with plenty
 * of RAM before collecting, which broke the < 256 MB RSS budget under bulk load (432 MB peak in the bulk
 * benchmark) although what tidemark retains is bounded. A 16 MB young generation and a 160 MB old space keep peak
 * RSS near 200 MB at the same speed. Run the file itself (`cli/tidemark.mjs …`, or the `tidemark` bin), not
 * `node cli/tidemark.mjs`, to get them.
 *
 * Node's on-disk compile cache (os.tmpdir()/node-compile-cache, or NODE_COMPILE_CACHE): type-stripped and
 * compiled modules are reused by the next process, which halves start-up (0.36 s → 0.20 s for `--help`, measured
 * on the 2-core bench machine) — every command pays it, `tidemark undo` and `run` included. It covers only modules
 * loaded after this call, and Node strips the types of a .ts entry file with a TypeScript parser it loads for that
 * (~20 ms of CPU) before any of the entry's code runs: hence this entry is plain JavaScript, with no types to strip,
 * and everything else is imported after the cache is on. A cache that cannot be written is skipped.
 */
import { enableCompileCache } from 'node:module';

enableCompileCache();
await import('./program.ts');

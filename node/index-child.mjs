/**
 * Entry of the rollback index loop's child process (index-loop.ts spawns it); the program is index-child.ts.
 *
 * The compile cache the CLI uses (cli/tidemark.mjs): without it each follower start strips and compiles its ~60
 * modules again, ~0.15 s of CPU (measured: 0.20 → 0.05 s user for the imports) taken from capture and apply just
 * as a `run` starts. It covers modules loaded after this call; and this entry is plain JavaScript because Node
 * strips a .ts entry's types with a parser it loads for that before any code runs (~60 ms of CPU per follower
 * start, measured: 0.17 → 0.11 s of CPU for a follower's first 0.8 s).
 */
import { enableCompileCache } from 'node:module';

enableCompileCache();
await import('./index-child.ts');

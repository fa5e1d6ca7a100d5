/**
 * prom-client, loaded on first use. A `tidemark run` without `metrics:` never needs it, and importing it costs
 * ~25 ms of start-up (it loads @opentelemetry/api too); the modules that create metrics call this only when
 * given a Registry, which exists only once prom-client is loaded (node/metrics.ts), so the require below returns
 * the module already in the cache — the same classes the Registry belongs to. Types: `import type` from the package.
 */
import { createRequire } from 'node:module';
import type * as Prom from 'prom-client';

let prom: typeof Prom | null = null;

export function promClient(): typeof Prom {
  prom ??= createRequire(import.meta.url)('prom-client') as typeof Prom;
  return prom;
}

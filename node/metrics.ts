/** Prometheus metrics endpoint (GET /metrics) for `tidemark run`, on fastify, bound to the configured address. */
import Fastify from 'fastify';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { TidemarkError } from '../core/errors.ts';

export interface MetricsServer {
  registry: Registry;
  close(): Promise<void>;
}

export async function startMetrics(cfg: { port: number; host: string }, log: Logger): Promise<MetricsServer> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tidemark_' });
  const app = Fastify({ logger: false });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
  try {
    await app.listen({ port: cfg.port, host: cfg.host });
  } catch (err) {
    throw new TidemarkError(`metrics: cannot listen on ${cfg.host}:${cfg.port} (set metrics.port to a free port)`, {
      code: 'CONFIG',
      cause: err,
    });
  }
  log.info({ host: cfg.host, port: cfg.port }, 'metrics on /metrics');
  return { registry, close: () => app.close() };
}

/**
 * The backup store server of a site (`backup.serve`): serves one of this site's stores to the other sites' copy
 * jobs and restores (`kind: site` stores) over the ship transport's mutual TLS, while `tidemark run` runs this
 * site. Runs until the signal aborts; a port already in use or a missing certificate stops the process at start.
 */
import type { Logger } from 'pino';
import { openStore } from '../backup/run/open-store.ts';
import { StoreServer } from '../backup/store/site-server.ts';
import type { Config } from '../config/config.ts';
import { TidemarkError } from '../core/errors.ts';
import { linkSecurity } from './ship-transports.ts';

export type ServeConfig = NonNullable<Config['backup']>['serve'][number];

export async function storeServeLoop(
  config: Config,
  serve: ServeConfig,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  const b = config.backup;
  const storeCfg = b?.stores.find((s) => s.name === serve.store);
  if (b === undefined || storeCfg === undefined) {
    throw new TidemarkError(`backup.serve: no store "${serve.store}"`, { code: 'CONFIG' });
  }
  const slog = log.child({ component: 'backup-serve', site: serve.site, store: serve.store });
  const store = await openStore(storeCfg);
  try {
    const at = serve.listen.lastIndexOf(':');
    const server = await StoreServer.listen({
      store,
      storeName: serve.store,
      host: serve.listen.slice(0, at).replace(/^\[|\]$/g, ''),
      port: Number(serve.listen.slice(at + 1)),
      security: await linkSecurity(config, serve.site, slog),
      ...(serve.allow === undefined ? {} : { sites: serve.allow }),
      log: slog,
    });
    if (!signal.aborted)
      await new Promise<void>((res) => signal.addEventListener('abort', () => res(), { once: true }));
    await server.close();
  } finally {
    await store.close();
  }
}

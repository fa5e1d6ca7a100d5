/**
 * The start-up connection check for a MySQL/MariaDB server (source or target): one session opened and closed, so a
 * wrong host or password fails at once with one clear line naming the server and account, never retried.
 */
import { TidemarkError } from '../core/errors.ts';
import { type MysqlEndpoint, openSession } from './session.ts';

/** `what` names the server in the message ("source", "target replica"). */
export async function preflightMysql(what: string, ep: MysqlEndpoint): Promise<void> {
  try {
    const c = await openSession(ep, { apply: false });
    await c.end();
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    // Name the server and account once: most connection errors already carry "host:port".
    const where = msg.includes(`${ep.host}:${ep.port}`) ? what : `${what} ${ep.host}:${ep.port} (user ${ep.user})`;
    throw new TidemarkError(`${where}: ${msg}`, {
      code: err instanceof TidemarkError ? err.code : 'CONNECT',
      retriable: false,
      cause: err instanceof TidemarkError ? err.cause : err,
    });
  }
}

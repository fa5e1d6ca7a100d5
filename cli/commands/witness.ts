/**
 * `tidemark witness -c FILE`: runs the takeover witness (failover/witness.ts) until SIGINT/SIGTERM, ideally on a
 * host other than the primary's and the standbys'. It needs, from the config file:
 *
 *   source               the primary (host, port, tls); the heartbeat writes as failover.account
 *   failover.witness     address: where it listens ("host:port"; the standbys dial the same address)
 *   failover.monitor     thresholds, probe timeout, heartbeat table, TCP checks (the link probe is the standbys')
 *   failover.calendar    the probe interval while the primary is healthy
 *   ship.certs_dir       ca.crt, witness.crt and witness.key (tidemark certs --site witness [--host H]), or
 *   ship.plaintext       true: plain HTTP, no authentication
 */
import type { MysqlEndpoint } from '../../mysql/session.ts';
import { startWitness } from '../../failover/witness.ts';
import { WITNESS_SITE } from '../../failover/witness-client.ts';
import { ConfigError } from '../../core/errors.ts';
import { asFailoverAccount, failoverOf, primaryDbSteps } from '../../node/failover-spec.ts';
import { linkSecurity } from '../../node/ship-transports.ts';
import type { CommandContext } from './context.ts';

/** Runs until the signal aborts; returns 0 after a clean stop. */
export async function witnessCommand(o: CommandContext): Promise<number> {
  const { config } = o;
  const f = failoverOf(config);
  if (!f.witness) {
    throw new ConfigError(`${config.file}: failover.witness.address: required to run the witness (where it listens)`, {
      key: 'failover.witness.address',
    });
  }
  const primary: MysqlEndpoint = asFailoverAccount(f, config.source);
  const tls = await linkSecurity(config, WITNESS_SITE, o.log);
  const w = await startWitness({
    primary,
    heartbeat: primaryDbSteps(config).heartbeat,
    monitor: f.monitor,
    calendar: f.calendar,
    listen: f.witness.address,
    tls,
    log: o.log,
    signal: o.signal,
  });
  await w.finished;
  return 0;
}

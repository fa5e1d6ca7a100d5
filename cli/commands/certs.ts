/**
 * `tidemark certs --dir DIR --ca NAME --site NAME [--site NAME …] [--host H …] [--ip A …] [--days N] [--force]`:
 * makes the CA for the ship link once, and a key + certificate per site signed by it (ship/tcp/certs.ts). It
 * needs no config file. --host and --ip are added to every site certificate of the call: give sites that have
 * different host names their own call (the CA made by the first call is reused).

 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { CA_CERT, CA_KEY, makeCerts } from '../../ship/tcp/index.ts';
import { EXIT_OK } from './exit.ts';
import type { TextSink } from './context.ts';

export interface CertsCommandOptions {
  readonly dir: string;
  readonly ca: string;
  readonly sites: readonly string[];
  readonly hosts?: readonly string[];
  readonly ips?: readonly string[];
  /** Site certificate validity; default ship/tcp/certs.ts DEFAULT_SITE_DAYS. */
  readonly days?: number;
  readonly force: boolean;
  readonly stdout: TextSink;
  readonly log?: Logger;
  /** The openssl command (tests). */
  readonly openssl?: string;
}

export async function certsCommand(opts: CertsCommandOptions): Promise<number> {
  const res = await makeCerts({
    dir: opts.dir,
    ca: opts.ca,
    sites: opts.sites,
    ...(opts.hosts ? { hosts: opts.hosts } : {}),
    ...(opts.ips ? { ips: opts.ips } : {}),
    ...(opts.days !== undefined ? { days: opts.days } : {}),
    force: opts.force,
    ...(opts.log ? { log: opts.log } : {}),
    ...(opts.openssl ? { openssl: opts.openssl } : {}),
  });
  const lines: string[] = [];
  const caCert = join(res.dir, CA_CERT);
  const caKey = join(res.dir, CA_KEY);
  lines.push(
    res.caCreated
      ? `made CA "${opts.ca}": ${caCert}, ${caKey} (valid until ${res.caNotAfter})`
      : `using the existing CA "${opts.ca}" in ${res.dir} (valid until ${res.caNotAfter})`,
  );
  for (const s of res.sites) {
    lines.push(`made site "${s.name}": ${s.cert}, ${s.key} (names ${s.names.join(', ')}; valid until ${s.notAfter})`);
  }
  lines.push(
    `next: give each site ${CA_CERT}, its <site>.crt and <site>.key (keep keys mode 0600);`,
    `      keep ${CA_KEY} on this machine only: it is needed to add sites, not to run them`,
  );
  opts.stdout.write(`${lines.join('\n')}\n`);
  return EXIT_OK;
}

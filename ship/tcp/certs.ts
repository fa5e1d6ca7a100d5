/**
 * Certificates for the ship link: one CA per deployment, one key + certificate per site signed by it. Each site
 * certificate serves both ends of mutual TLS (EKU serverAuth + clientAuth); its names (CN and DNS SAN) are the
 * site name, plus any extra host names and IP addresses asked for.
 *
 *   DIR/ca.key  ca.crt          the CA (ECDSA P-256); ca.key stays on the machine that issues certificates
 *   DIR/<site>.key  <site>.crt  per site; a site receives ca.crt, <site>.key and <site>.crt
 *
 * Keys are written 0600 in a 0700 directory. An existing CA is reused to sign new sites. One that does not fit
 * (another name, expired, half present, key and certificate not a pair) is refused, and replaced only with
 * `force`; a fitting CA is kept even with `force`, which then just reissues the named sites (replacing the CA
 * would void every other site's certificate: to rotate it, use a new name). Existing site files are never
 * replaced without `force`. Files appear whole: everything is made in a staging directory inside DIR and then
 * linked (or, with force, renamed) into place.
 *
 * Why the openssl command and not a library: node:crypto makes keys and parses certificates but cannot issue
 * them. The npm options were weighed: @peculiar/x509 is well kept but needs a global Reflect polyfill and about
 * a dozen packages; node-forge is a single package but pure-JavaScript, RSA-only for certificates, and its own
 * ASN.1/signature code has had several CVEs. OpenSSL is the reference implementation that Node's TLS itself
 * uses, is present on every Linux server this runs on (Debian: package openssl), and adds nothing to
 * package.json. It is run with an argument array (no shell) and a config file of our own, so the system
 * openssl.cnf plays no part; every certificate made is then checked with node:crypto (issuer, signature, key).
 */
import { execFile } from 'node:child_process';
import { createPrivateKey, generateKeyPair, randomBytes, X509Certificate } from 'node:crypto';
import { chmod, link, mkdir, mkdtemp, open, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { fsyncDir } from '../../core/durable-file.ts';
import { silentLogger } from '../../core/log.ts';
import { TidemarkError } from '../../core/errors.ts';

const execFileAsync = promisify(execFile);
const generateKeyPairAsync = promisify(generateKeyPair);

export const CA_KEY = 'ca.key';
export const CA_CERT = 'ca.crt';
/** CA validity when not given: ten years, or the site validity if that is longer. */
export const DEFAULT_CA_DAYS = 3650;
export const DEFAULT_SITE_DAYS = 825;

const LABEL = '[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?';
const DNS_NAME_RE = new RegExp(`^${LABEL}(\\.${LABEL})*$`, 'i');
const CA_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/;

export interface CertsOptions {
  dir: string;
  /** CA common name. */
  ca: string;
  sites: readonly string[];
  /** Site certificate validity in days. Default DEFAULT_SITE_DAYS. */
  days?: number;
  /** CA validity in days when a CA is made. Default max(DEFAULT_CA_DAYS, days). */
  caDays?: number;
  /** Extra DNS names for every site certificate of this call. */
  hosts?: readonly string[];
  /** Extra IP addresses for every site certificate of this call. */
  ips?: readonly string[];
  /** Replace existing site files, and an existing CA that does not fit (see the module comment). */
  force?: boolean;
  log?: Logger;
  /** The openssl command. Default "openssl". */
  openssl?: string;
}

export interface CertsResult {
  readonly dir: string;
  /** True when a CA was made, false when the existing one was used. */
  readonly caCreated: boolean;
  readonly caNotAfter: string;
  readonly sites: readonly { name: string; key: string; cert: string; notAfter: string; names: string[] }[];
}

export interface TlsMaterial {
  /** PEM text. */
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

function usage(message: string): TidemarkError {
  return new TidemarkError(message, { code: 'USAGE' });
}

/** A site name: a DNS name (letters, digits, '-', dots between labels), not "ca". */
export function checkSiteName(name: string): void {
  if (name.length > 253 || !DNS_NAME_RE.test(name)) {
    throw usage(`site name "${name}" must be a DNS-style name: letters, digits and "-", labels separated by dots`);
  }
  if (name.toLowerCase() === 'ca') throw usage('site name "ca" is reserved for the CA files');
}

/** Checks the options and returns the normalized sets; throws USAGE errors that name the bad value. */
export function checkCertsOptions(opts: CertsOptions): { days: number; caDays: number; sites: string[] } {
  if (!CA_NAME_RE.test(opts.ca)) {
    throw usage(`CA name "${opts.ca}" must be 1-64 letters, digits, spaces or "._-", starting with a letter or digit`);
  }
  if (opts.sites.length === 0) throw usage('name at least one site (--site NAME)');
  for (const s of opts.sites) checkSiteName(s);
  const lower = opts.sites.map((s) => s.toLowerCase());
  const dup = lower.find((s, i) => lower.indexOf(s) !== i);
  if (dup !== undefined) throw usage(`site "${dup}" is named twice`);
  for (const h of opts.hosts ?? []) {
    if (h.length > 253 || !DNS_NAME_RE.test(h)) throw usage(`--host "${h}" is not a DNS name`);
  }
  for (const ip of opts.ips ?? []) if (isIP(ip) === 0) throw usage(`--ip "${ip}" is not an IPv4 or IPv6 address`);
  const days = opts.days ?? DEFAULT_SITE_DAYS;
  const caDays = opts.caDays ?? Math.max(DEFAULT_CA_DAYS, days);
  for (const [what, n] of [
    ['--days', days],
    ['CA days', caDays],
  ] as const) {
    if (!Number.isInteger(n) || n < 1 || n > 36500) throw usage(`${what} must be a whole number from 1 to 36500`);
  }
  return { days, caDays, sites: [...opts.sites] };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = ((b[0] as number) & 0x7f) | 0x01; // positive, and 16 bytes long
  return `0x${b.toString('hex')}`;
}

function opensslConfig(cn: string, sans: string[]): string {
  return [
    '[req]',
    'distinguished_name = dn',
    'prompt = no',
    '[dn]',
    `CN = ${cn}`,
    '[v3_ca]',
    'basicConstraints = critical, CA:TRUE, pathlen:0',
    'keyUsage = critical, keyCertSign, cRLSign',
    'subjectKeyIdentifier = hash',
    '[v3_site]',
    'basicConstraints = critical, CA:FALSE',
    'keyUsage = critical, digitalSignature',
    'extendedKeyUsage = serverAuth, clientAuth',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid:always',
    `subjectAltName = ${sans.join(', ')}`,
    '',
  ].join('\n');
}

class Openssl {
  private readonly bin: string;
  private readonly cwd: string;

  constructor(bin: string, cwd: string) {
    this.bin = bin;
    this.cwd = cwd;
  }

  async run(args: string[], what: string): Promise<void> {
    try {
      await execFileAsync(this.bin, args, { cwd: this.cwd, timeout: 60_000 });
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      if (e.code === 'ENOENT') {
        throw new TidemarkError(
          `certs: the "${this.bin}" command was not found; install OpenSSL (Debian: apt-get install openssl)`,
          { code: 'CERTS_OPENSSL', cause: err },
        );
      }
      const detail = (e.stderr ?? '').trim().split('\n').slice(-3).join(' | ');
      throw new TidemarkError(`certs: openssl failed to ${what}: ${detail || e.message}`, {
        code: 'CERTS_OPENSSL',
        cause: err,
      });
    }
  }
}

async function newKey(path: string): Promise<void> {
  const { privateKey } = await generateKeyPairAsync('ec', {
    namedCurve: 'P-256',
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  await writeFile(path, privateKey, { mode: 0o600, flag: 'wx' });
  await chmod(path, 0o600); // whatever the umask
}

/**
 * Moves a staged file into place: never over an existing file unless `force`. The file is fsynced first and the
 * directory after (core/durable-file.ts), so a crash right after leaves a whole file under the name.
 */
async function place(from: string, to: string, force: boolean): Promise<void> {
  const fh = await open(from, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  if (force) {
    await rename(from, to);
  } else {
    try {
      await link(from, to);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST')
        throw usage(`${to} already exists; use --force to replace it`);
      throw err;
    }
    await unlink(from);
  }
  await fsyncDir(dirname(to));
}

/** Why the CA in `dir` cannot sign for `name`, or null when it can. */
async function caProblem(dir: string, name: string): Promise<string | null> {
  let cert: X509Certificate;
  let key: string;
  try {
    cert = new X509Certificate(await readFile(join(dir, CA_CERT)));
    key = await readFile(join(dir, CA_KEY), 'utf8');
  } catch (err) {
    return `the CA in ${dir} cannot be read (${(err as Error).message})`;
  }
  const cn = commonName(cert);
  if (cn !== name) return `${dir} already holds a CA named "${cn}", not "${name}"`;
  if (!cert.ca) return `${join(dir, CA_CERT)} is not a CA certificate`;
  if (new Date(cert.validTo).getTime() <= Date.now()) return `the CA in ${dir} expired on ${cert.validTo}`;
  let pair = false;
  try {
    pair = cert.checkPrivateKey(createPrivateKey(key));
  } catch {
    pair = false;
  }
  return pair ? null : `${join(dir, CA_KEY)} is not the key of ${join(dir, CA_CERT)}`;
}

export function commonName(cert: X509Certificate): string | null {
  for (const part of cert.subject.split('\n')) if (part.startsWith('CN=')) return part.slice(3);
  return null;
}

/** DNS names and IP addresses in a certificate's subjectAltName. */
export function altNames(cert: X509Certificate): { dns: string[]; ips: string[] } {
  const dns: string[] = [];
  const ips: string[] = [];
  for (const item of (cert.subjectAltName ?? '').split(', ')) {
    if (item.startsWith('DNS:')) dns.push(item.slice(4));
    else if (item.startsWith('IP Address:')) ips.push(item.slice(11));
  }
  return { dns, ips };
}

/** Makes the CA (unless there is one) and a key + certificate per site. */
export async function makeCerts(opts: CertsOptions): Promise<CertsResult> {
  const { days, caDays, sites } = checkCertsOptions(opts);
  const log = opts.log ?? silentLogger;
  const force = opts.force === true;
  // Absolute: openssl runs in the staging directory, where a relative CA path would not resolve.
  const dir = resolve(opts.dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });

  const [hasCaKey, hasCaCert] = [await exists(join(dir, CA_KEY)), await exists(join(dir, CA_CERT))];
  let makeCa = !hasCaKey && !hasCaCert;
  if (!makeCa) {
    const problem =
      hasCaKey !== hasCaCert
        ? `${dir} holds ${hasCaKey ? CA_KEY : CA_CERT} without ${hasCaKey ? CA_CERT : CA_KEY}`
        : await caProblem(dir, opts.ca);
    if (problem && !force) {
      throw usage(`${problem}; use --force to replace it (every site certificate must then be reissued)`);
    }
    makeCa = problem !== null;
  }
  if (!force) {
    const taken: string[] = [];
    for (const s of sites) {
      for (const ext of ['key', 'crt']) if (await exists(join(dir, `${s}.${ext}`))) taken.push(`${s}.${ext}`);
    }
    if (taken.length > 0) throw usage(`${dir} already holds ${taken.join(', ')}; use --force to replace them`);
  }
  const existingCa = makeCa ? null : new X509Certificate(await readFile(join(dir, CA_CERT)));

  const stage = await mkdtemp(join(dir, '.certs-'));
  const openssl = new Openssl(opts.openssl ?? 'openssl', stage);
  try {
    let caCert = existingCa;
    let caKeyPath = join(dir, CA_KEY);
    let caCertPath = join(dir, CA_CERT);
    if (makeCa) {
      caKeyPath = join(stage, CA_KEY);
      caCertPath = join(stage, CA_CERT);
      await newKey(caKeyPath);
      await writeFile(join(stage, 'ca.cnf'), opensslConfig(opts.ca, []));
      await openssl.run(
        ['req', '-new', '-x509', '-config', 'ca.cnf', '-extensions', 'v3_ca', '-key', CA_KEY, '-sha256'].concat([
          '-days',
          String(caDays),
          '-set_serial',
          serial(),
          '-out',
          CA_CERT,
        ]),
        'make the CA certificate',
      );
      caCert = new X509Certificate(await readFile(caCertPath));
    }
    const ca = caCert as X509Certificate;
    const made: { name: string; key: string; cert: string; notAfter: string; names: string[] }[] = [];
    for (const site of sites) {
      const names = [site, ...(opts.hosts ?? []).filter((h) => h.toLowerCase() !== site.toLowerCase())];
      const sans = [...names.map((n) => `DNS:${n}`), ...(opts.ips ?? []).map((ip) => `IP:${ip}`)];
      await newKey(join(stage, `${site}.key`));
      await writeFile(join(stage, `${site}.cnf`), opensslConfig(site, sans));
      await openssl.run(
        ['req', '-new', '-config', `${site}.cnf`, '-key', `${site}.key`, '-out', `${site}.csr`],
        `make the certificate request for site ${site}`,
      );
      await openssl.run(
        ['x509', '-req', '-in', `${site}.csr`, '-CA', caCertPath, '-CAkey', caKeyPath, '-sha256']
          .concat(['-days', String(days), '-set_serial', serial()])
          .concat(['-extfile', `${site}.cnf`, '-extensions', 'v3_site', '-out', `${site}.crt`]),
        `sign the certificate of site ${site}`,
      );
      const cert = new X509Certificate(await readFile(join(stage, `${site}.crt`)));
      if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
        throw new TidemarkError(`certs: the certificate made for site ${site} does not verify against the CA`, {
          code: 'CERTS_CHECK',
        });
      }
      made.push({
        name: site,
        key: join(dir, `${site}.key`),
        cert: join(dir, `${site}.crt`),
        notAfter: cert.validTo,
        names: [...names, ...(opts.ips ?? [])],
      });
    }
    // Into place: the CA first (a CA without sites is harmless; sites without their CA are not).
    if (makeCa) {
      await place(caKeyPath, join(dir, CA_KEY), force);
      await place(caCertPath, join(dir, CA_CERT), force);
      log.info(
        { dir, ca: opts.ca, notAfter: ca.validTo },
        hasCaKey || hasCaCert ? 'certs: CA replaced' : 'certs: CA made',
      );
    }
    for (const s of made) {
      await place(join(stage, `${s.name}.key`), s.key, force);
      await place(join(stage, `${s.name}.crt`), s.cert, force);
      log.info({ dir, site: s.name, names: s.names, notAfter: s.notAfter }, 'certs: site certificate made');
    }
    return { dir, caCreated: makeCa, caNotAfter: ca.validTo, sites: made };
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

/**
 * Reads what one site needs for the ship link: the CA certificate and the site's key and certificate. Warns when
 * the key is readable by group or others.
 */
export async function loadSiteTls(dir: string, site: string, log: Logger = silentLogger): Promise<TlsMaterial> {
  checkSiteName(site);
  const keyPath = join(dir, `${site}.key`);
  const read = async (path: string): Promise<string> => {
    try {
      return await readFile(path, 'utf8');
    } catch (err) {
      throw new TidemarkError(`cannot read ${path} (make it with: tidemark certs --dir ${dir} --site ${site})`, {
        code: 'CONFIG',
        cause: err,
        context: { path },
      });
    }
  };
  const [ca, cert, key] = [await read(join(dir, CA_CERT)), await read(join(dir, `${site}.crt`)), await read(keyPath)];
  if (((await stat(keyPath)).mode & 0o077) !== 0) {
    log.warn({ path: keyPath }, 'ship: private key is readable by group or others; chmod 600 it');
  }
  return { ca, cert, key };
}

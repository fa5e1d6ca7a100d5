/**
 * The TLS files of a server endpoint (MySQL/MariaDB in mysql/, PostgreSQL in postgres/): the config keys
 * `tls.{ca_file,cert_file,key_file,reject_unauthorized}` read into the PEM texts a driver takes. A file that
 * cannot be read is a ConfigError naming the key, e.g. "source.tls.ca_file: cannot read /x (ENOENT)".
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from './errors.ts';

/** The `tls` keys of an endpoint. */
export interface TlsFiles {
  readonly ca_file?: string | undefined;
  readonly cert_file?: string | undefined;
  readonly key_file?: string | undefined;
  readonly reject_unauthorized?: boolean | undefined;
}

/** What the files hold, in the shape both mysql2 and node's tls take; keys only for files given. */
export interface TlsMaterial {
  rejectUnauthorized: boolean;
  ca?: string;
  cert?: string;
  key?: string;
}

/** Reads the files now; undefined without `tls`. `tlsKey` names the keys in errors ("source.tls"). */
export function readTlsFiles(t: TlsFiles | undefined, tlsKey = 'tls'): TlsMaterial | undefined {
  if (!t) return undefined;
  const read = (f: string | undefined, key: string): string | undefined => {
    if (f === undefined) return undefined;
    try {
      return readFileSync(f, 'utf8');
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new ConfigError(`${tlsKey}.${key}: cannot read ${f} (${why})`, { key: `${tlsKey}.${key}`, file: f });
    }
  };
  const out: TlsMaterial = { rejectUnauthorized: t.reject_unauthorized ?? true };
  const ca = read(t.ca_file, 'ca_file');
  const cert = read(t.cert_file, 'cert_file');
  const key = read(t.key_file, 'key_file');
  if (ca !== undefined) out.ca = ca;
  if (cert !== undefined) out.cert = cert;
  if (key !== undefined) out.key = key;
  return out;
}

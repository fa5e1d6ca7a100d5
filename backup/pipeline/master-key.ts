/**
 * Loading the backup master key (I/O): from a file or an environment variable, as the config names it
 * (`backup.encryption.key_file` or `key_env`). The key itself never reaches a log or an error message; the file
 * must not be readable by group or others.
 */
import { readFile, stat } from 'node:fs/promises';
import { ConfigError } from '../../core/errors.ts';
import { type MasterKey, parseMasterKey } from './keys.ts';

export type MasterKeySource = { readonly file: string } | { readonly env: string };

export async function loadMasterKey(src: MasterKeySource, env: NodeJS.ProcessEnv = process.env): Promise<MasterKey> {
  if ('env' in src) {
    const v = env[src.env];
    if (v === undefined || v === '') {
      throw new ConfigError(`backup master key: environment variable '${src.env}' is not set`, { env: src.env });
    }
    return parseMasterKey(Buffer.from(v, 'latin1'), `env ${src.env}`);
  }
  let st: Awaited<ReturnType<typeof stat>>;
  let raw: Buffer;
  try {
    st = await stat(src.file);
    raw = await readFile(src.file);
  } catch (err) {
    throw new ConfigError(
      `backup master key file '${src.file}' cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      { file: src.file },
    );
  }
  if ((st.mode & 0o077) !== 0) {
    throw new ConfigError(
      `backup master key file '${src.file}' is readable by group or others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 it`,
      { file: src.file },
    );
  }
  return parseMasterKey(raw, `file ${src.file}`);
}

/**
 * Backup keys (pure apart from the random data key): every backup is sealed with its own random 32-byte data
 * key; the manifest keeps that key wrapped (AES-256-GCM) under a key derived from the master key, with a key id —
 * a fingerprint of the master key — so a wrong master key is named before anything is fetched, and a forged or
 * swapped header fails the unwrap tag (the wrap's AAD binds the backup id). The master key never leaves the
 * process: MasterKey holds it in a private field (JSON and pino see only the id).
 *
 * Derivations use HKDF-SHA256 over the master key with distinct labels, so the key id reveals nothing usable and
 * the wrapping key is never the master key itself.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { ConfigError, TidemarkError } from '../../core/errors.ts';

export const DATA_KEY_BYTES = 32;
const MASTER_KEY_BYTES = 32;
const SALT = 'tidemark backup master key';

/** What the manifest stores about a backup's encryption (backup/manifest keeps it as given). */
export interface EncryptionHeader {
  /** Format of this header and of the chunks (backup/pipeline/format.ts). */
  readonly version: 1;
  /** Each chunk: zstd (or stored), then AES-256-GCM. */
  readonly algorithm: 'zstd+aes-256-gcm';
  /** Fingerprint of the master key the data key is wrapped with (32 hex digits). */
  readonly keyId: string;
  /** base64 of nonce (12) ‖ wrapped data key (32) ‖ tag (16). */
  readonly wrappedKey: string;
}

/** The master key: the bytes stay in a private field; `id` is its fingerprint. */
export class MasterKey {
  readonly #bytes: Buffer;
  readonly id: string;
  /** Where it came from (`file /etc/tidemark/backup.key`, `env TIDEMARK_BACKUP_KEY`): never the key. */
  readonly source: string;

  constructor(bytes: Buffer, source: string) {
    if (bytes.length !== MASTER_KEY_BYTES) {
      throw new ConfigError(
        `backup master key (${source}) must be ${MASTER_KEY_BYTES} bytes, got ${bytes.length}: ` +
          'make one with `openssl rand -hex 32`',
        { source },
      );
    }
    this.#bytes = Buffer.from(bytes);
    this.source = source;
    this.id = Buffer.from(hkdfSync('sha256', this.#bytes, SALT, 'key id v1', 16)).toString('hex');
  }

  /** The wrapping key (derived, never the master key itself). */
  wrappingKey(): Buffer {
    return Buffer.from(hkdfSync('sha256', this.#bytes, SALT, 'wrap v1', 32));
  }

  toJSON(): { id: string; source: string } {
    return { id: this.id, source: this.source };
  }
}

/**
 * A master key from the text of a file or an environment variable: 64 hex digits or base64 of 32 bytes
 * (surrounding white space ignored); a file may also hold exactly 32 raw bytes.
 */
export function parseMasterKey(raw: Buffer, source: string): MasterKey {
  const text = raw.toString('latin1').trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return new MasterKey(Buffer.from(text, 'hex'), source);
  if (/^[A-Za-z0-9+/]{43}=$/.test(text)) return new MasterKey(Buffer.from(text, 'base64'), source);
  if (raw.length === MASTER_KEY_BYTES) return new MasterKey(raw, source);
  throw new ConfigError(
    `backup master key (${source}) is neither 64 hex digits, base64 of 32 bytes nor 32 raw bytes: ` +
      'make one with `openssl rand -hex 32`',
    { source },
  );
}

export function newDataKey(): Buffer {
  return randomBytes(DATA_KEY_BYTES);
}

function wrapAad(backupId: string): Buffer {
  return Buffer.from(`tidemark backup data key v1\0${backupId}`, 'utf8');
}

export function wrapDataKey(master: MasterKey, dataKey: Buffer, backupId: string): EncryptionHeader {
  if (dataKey.length !== DATA_KEY_BYTES) throw new RangeError(`a data key is ${DATA_KEY_BYTES} bytes`);
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', master.wrappingKey(), nonce);
  c.setAAD(wrapAad(backupId));
  const ct = Buffer.concat([c.update(dataKey), c.final()]);
  return {
    version: 1,
    algorithm: 'zstd+aes-256-gcm',
    keyId: master.id,
    wrappedKey: Buffer.concat([nonce, ct, c.getAuthTag()]).toString('base64'),
  };
}

function keyError(
  backupId: string,
  what: string,
  master: MasterKey,
  header: EncryptionHeader,
  cause?: unknown,
): TidemarkError {
  return new TidemarkError(`backup '${backupId}': ${what}; nothing was read (give the master key it was taken with)`, {
    code: 'BACKUP_KEY',
    cause,
    context: { backupId, keyId: master.id, backupKeyId: header.keyId, keySource: master.source },
  });
}

/** The backup's data key; BACKUP_KEY when the master key is not the one it was wrapped with. */
export function unwrapDataKey(master: MasterKey, header: EncryptionHeader, backupId: string): Buffer {
  if (header.version !== 1 || header.algorithm !== 'zstd+aes-256-gcm') {
    throw new TidemarkError(
      `backup '${backupId}': encryption header version ${String(header.version)} / '${String(header.algorithm)}' ` +
        'is not one this tidemark reads',
      { code: 'BACKUP_INTEGRITY', context: { backupId } },
    );
  }
  if (header.keyId !== master.id) {
    throw keyError(
      backupId,
      `sealed under master key id '${header.keyId}', not '${master.id}' (${master.source})`,
      master,
      header,
    );
  }
  const w = Buffer.from(header.wrappedKey, 'base64');
  if (w.length !== 12 + DATA_KEY_BYTES + 16) {
    throw keyError(backupId, 'the wrapped data key has the wrong length', master, header);
  }
  const d = createDecipheriv('aes-256-gcm', master.wrappingKey(), w.subarray(0, 12));
  d.setAAD(wrapAad(backupId));
  d.setAuthTag(w.subarray(12 + DATA_KEY_BYTES));
  try {
    return Buffer.concat([d.update(w.subarray(12, 12 + DATA_KEY_BYTES)), d.final()]);
  } catch (err) {
    throw keyError(backupId, 'the data key does not unwrap under this master key (tag mismatch)', master, header, err);
  }
}

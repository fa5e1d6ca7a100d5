/**
 * What both backup stores share: the key rules (so a key valid in one store is valid in the other and both list
 * in the same byte order) and the typed errors they raise.
 */
import { TidemarkError } from '../../core/errors.ts';

const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/**
 * Keys are '/'-separated segments of letters, digits, '.', '_' and '-', none starting with '.' (so a directory
 * store's own `.tmp/` and `..` can never be a key), at most 512 characters. ASCII only: key order is byte order
 * in every store.
 */
export function checkKey(key: string): void {
  if (key.length === 0 || key.length > 512 || !key.split('/').every((s) => SEGMENT.test(s))) {
    throw new TidemarkError(
      `backup store key '${key}' is not valid: '/'-separated names of letters, digits, '.', '_', '-', none starting with '.'`,
      { code: 'USAGE', context: { key } },
    );
  }
}

/** A prefix is a key's beginning: the same characters, may end with '/' or be empty. */
export function checkPrefix(prefix: string): void {
  if (prefix === '') return;
  checkKey(prefix.endsWith('/') ? prefix.slice(0, -1) : `${prefix}x`);
}

/** get() of a key with no object: code 'IO', context { key, missing: true } (the reader reports a missing piece). */
export function missingKey(store: string, key: string, cause?: unknown): TidemarkError {
  return new TidemarkError(`backup store ${store} has no object '${key}'`, {
    code: 'IO',
    cause,
    context: { store, key, missing: true },
  });
}

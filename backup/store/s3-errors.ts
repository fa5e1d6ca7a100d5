/**
 * S3 failures as TidemarkErrors 'BACKUP_STORE': retriable where another attempt can succeed (network errors,
 * 5xx, throttling, a conditional-write conflict), not where a person must act (credentials, permissions, a
 * missing bucket, a bad request). The message names the store, the operation and the key, never a credential.
 */
import { TidemarkError } from '../../core/errors.ts';

const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH']);
const THROTTLE = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestTimeout', 'RequestTimeTooSkewed']);
const FIX: Record<string, string> = {
  NoSuchBucket: 'the bucket does not exist: create it or fix `bucket`',
  AccessDenied: 'access denied: check the credentials and the bucket policy',
  InvalidAccessKeyId: 'the access key is not known to the server: check the credentials',
  SignatureDoesNotMatch: 'the secret key does not match the access key: check the credentials',
  PermanentRedirect: 'the bucket is in another region: fix `region` or `endpoint`',
};

export function s3Error(store: string, op: string, key: string, err: unknown): TidemarkError {
  if (err instanceof TidemarkError) return err;
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number }; $retryable?: unknown };
  const status = e?.$metadata?.httpStatusCode;
  const name = e?.name ?? 'Error';
  const sys = e?.code;
  const retriable =
    (sys !== undefined && NETWORK.has(sys)) ||
    THROTTLE.has(name) ||
    name === 'TimeoutError' ||
    name === 'ConditionalRequestConflict' ||
    e?.$retryable !== undefined ||
    (status !== undefined && (status >= 500 || status === 429 || status === 409));
  const fix = FIX[name] ?? (status === 403 ? FIX['AccessDenied'] : undefined);
  const what = `${name}${status !== undefined ? ` (HTTP ${status})` : ''}${sys !== undefined ? ` ${sys}` : ''}`;
  return new TidemarkError(
    `backup store ${store}: ${op} '${key}' failed: ${what}${fix ? `: ${fix}` : retriable ? ' (retriable)' : ''}`,
    { code: 'BACKUP_STORE', retriable, cause: err, context: { store, op, key, status, s3: name } },
  );
}

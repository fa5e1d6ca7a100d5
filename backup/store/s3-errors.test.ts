import { describe, expect, it } from 'vitest';
import { s3Error } from './s3-errors.ts';

const sdk = (name: string, status?: number, extra: object = {}) =>
  Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status }, ...extra });

describe('s3Error', () => {
  it('marks what a retry can fix as retriable, and what a person must fix as not, naming the fix', () => {
    const cases: [unknown, boolean, RegExp][] = [
      [sdk('InternalError', 500), true, /HTTP 500/],
      [sdk('SlowDown', 503), true, /SlowDown/],
      [sdk('ConditionalRequestConflict', 409), true, /retriable/],
      [Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }), true, /ECONNREFUSED/],
      [sdk('TimeoutError'), true, /TimeoutError/],
      [sdk('NoSuchBucket', 404), false, /create it/],
      [sdk('AccessDenied', 403), false, /credentials/],
      [sdk('SignatureDoesNotMatch', 403), false, /secret key/],
      [sdk('InvalidArgument', 400), false, /InvalidArgument \(HTTP 400\)/],
    ];
    for (const [err, retriable, msg] of cases) {
      const e = s3Error('s3://b/p/', 'put', 'k/piece-000001', err);
      expect(e.code).toBe('BACKUP_STORE');
      expect(e.retriable, e.message).toBe(retriable);
      expect(e.message).toMatch(msg);
      expect(e.message).toContain("'k/piece-000001'");
      expect(e.cause).toBe(err);
    }
  });
});

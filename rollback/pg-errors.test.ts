import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../core/errors.ts';
import { isOutcomeUnknownPg, rewindPgError } from './pg-errors.ts';

/** A server error as `pg` makes it: a message, a severity and the SQLSTATE in `code`. */
const serverError = (code: string, message: string) => Object.assign(new Error(message), { severity: 'ERROR', code });

describe('rewind errors on PostgreSQL', () => {
  it('maps the classification of postgres/errors.ts to rewind codes, keeping the SQLSTATE', () => {
    const deadlock = rewindPgError(serverError('40P01', 'deadlock detected'), 'rewind');
    expect([deadlock.code, deadlock.retriable]).toEqual(['REWIND_RETRY', true]);
    expect(deadlock.message).toBe('rewind: deadlock detected (SQLSTATE 40P01)');
    const ro = rewindPgError(serverError('25006', 'cannot execute UPDATE in a read-only transaction'), 'rewind');
    expect([ro.code, ro.retriable, ro.context['sqlState']]).toEqual(['REWIND_READ_ONLY', false, '25006']);
    const dup = rewindPgError(serverError('23505', 'duplicate key value'), 'x', { seq: 5n });
    expect([dup.code, dup.retriable, dup.context['seq']]).toEqual(['REWIND_FAILED', false, 5n]);
    const gone = rewindPgError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), 'x');
    expect([gone.code, gone.retriable]).toEqual(['REWIND_RETRY', true]);
    const own = new TidemarkError('guard failed', { code: 'REWIND_GUARD' });
    expect(rewindPgError(own, 'x')).toBe(own);
  });

  it('knows when a COMMIT may or may not have happened: the connection broke, no server answer', () => {
    expect(isOutcomeUnknownPg(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isOutcomeUnknownPg(Object.assign(new Error('x'), { code: 'EPIPE' }))).toBe(true);
    expect(isOutcomeUnknownPg(serverError('57P01', 'terminating connection due to administrator command'))).toBe(false);
    expect(isOutcomeUnknownPg(serverError('23505', 'duplicate key value'))).toBe(false);
  });
});

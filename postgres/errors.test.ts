import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../core/errors.ts';
import { classifyPgError, wrapPgError } from './errors.ts';

/** A `pg` DatabaseError's shape: a message and a five-character SQLSTATE in `code`. */
const dbError = (code: string, message: string, extra: Record<string, string> = {}) =>
  Object.assign(new Error(message), { code, severity: 'ERROR', ...extra });

describe('classifyPgError', () => {
  it.each([
    ['08006', 'PG_CONNECT', true],
    ['08P01', 'PG_CONNECT', true],
    ['57P01', 'PG_CONNECT', true],
    ['57P03', 'PG_CONNECT', true],
    ['57P04', 'PG_SERVER', false],
    ['28P01', 'PG_AUTH', false],
    ['28000', 'PG_AUTH', false],
    ['42501', 'PG_PRIVILEGE', false],
    ['53300', 'PG_RESOURCES', true],
    ['53100', 'PG_RESOURCES', false],
    ['40001', 'PG_TRANSIENT', true],
    ['40P01', 'PG_TRANSIENT', true],
    ['23505', 'PG_SERVER', false],
  ])('SQLSTATE %s is %s, retriable %s', (state, code, retriable) => {
    expect(classifyPgError(dbError(state, 'x'))).toEqual({ code, retriable, sqlState: state });
  });

  it('socket errors and the driver\'s own "Connection terminated" are retriable PG_CONNECT', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT']) {
      expect(classifyPgError(Object.assign(new Error(`connect ${code}`), { code }))).toEqual({
        code: 'PG_CONNECT',
        retriable: true,
      });
    }
    expect(classifyPgError(new Error('Connection terminated unexpectedly')).retriable).toBe(true);
    expect(classifyPgError(new Error('Connection terminated due to connection timeout')).code).toBe('PG_CONNECT');
  });

  it('anything unknown is not retriable', () => {
    expect(classifyPgError(new Error('something else'))).toEqual({ code: 'PG_SERVER', retriable: false });
    expect(classifyPgError('a string')).toEqual({ code: 'PG_SERVER', retriable: false });
    expect(classifyPgError(Object.assign(new Error('x'), { code: 'ENOENT' })).retriable).toBe(false);
  });
});

describe('wrapPgError', () => {
  it('keeps the SQLSTATE, the server fields and the cause', () => {
    const cause = dbError('42501', 'permission denied for table t', { table: 't', schema: 'app' });
    const e = wrapPgError(cause, 'reading app.t', { host: '127.0.0.1' });
    expect(e.message).toBe('reading app.t: permission denied for table t (SQLSTATE 42501)');
    expect(e.code).toBe('PG_PRIVILEGE');
    expect(e.retriable).toBe(false);
    expect(e.cause).toBe(cause);
    expect(e.context).toEqual({ host: '127.0.0.1', table: 't', schema: 'app', sqlState: '42501' });
  });

  it('passes a TidemarkError through unchanged', () => {
    const t = new TidemarkError('already typed', { code: 'PG_PROTOCOL' });
    expect(wrapPgError(t, 'x')).toBe(t);
  });
});

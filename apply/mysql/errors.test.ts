import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import { isDdlAlreadyDone, wrapDbError } from './errors.ts';
import { isOutcomeUnknown, isRetriableDbError } from '../../mysql/errors.ts';
import { fromDriver } from './values.ts';

function serverError(errno: number, code: string, msg = 'boom'): Error {
  return Object.assign(new Error(msg), { errno, code, sqlState: 'HY000', sqlMessage: msg });
}

describe('error classification', () => {
  it('deadlock, lock wait timeout and lost connections are retriable', () => {
    expect(isRetriableDbError(serverError(1213, 'ER_LOCK_DEADLOCK'))).toBe(true);
    expect(isRetriableDbError(serverError(1205, 'ER_LOCK_WAIT_TIMEOUT'))).toBe(true);
    expect(isRetriableDbError(Object.assign(new Error('x'), { code: 'PROTOCOL_CONNECTION_LOST', fatal: true }))).toBe(
      true,
    );
    expect(isRetriableDbError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe(true);
  });
  it('data errors are not', () => {
    expect(isRetriableDbError(serverError(1062, 'ER_DUP_ENTRY'))).toBe(false);
    expect(isRetriableDbError(serverError(1146, 'ER_NO_SUCH_TABLE'))).toBe(false);
    expect(isRetriableDbError(new Error('unknown'))).toBe(false);
  });
  it('wraps with errno and without statement text', () => {
    const e = wrapDbError(serverError(1062, 'ER_DUP_ENTRY', "Duplicate entry '1' for key 'PRIMARY'"), 'insert into t', {
      table: 't',
    });
    expect(e).toBeInstanceOf(TidemarkError);
    expect(e.code).toBe('APPLY_DIVERGED');
    expect(e.retriable).toBe(false);
    expect(e.message).toBe("insert into t: Duplicate entry '1' for key 'PRIMARY'");
    expect(e.context).toMatchObject({ table: 't', errno: 1062 });
    const r = wrapDbError(serverError(1213, 'ER_LOCK_DEADLOCK'), 'x');
    expect(r.retriable).toBe(true);
    expect(r.code).toBe('APPLY_RETRY');
    const t = new TidemarkError('mine', { code: 'INTERNAL' });
    expect(wrapDbError(t, 'y')).toBe(t);
  });
  it('a read-only replica is retriable (TARGET_READ_ONLY); other 1290 refusals are not', () => {
    const ro = serverError(
      1290,
      'ER_OPTION_PREVENTS_STATEMENT',
      'The MariaDB server is running with the --read-only option so it cannot execute this statement',
    );
    const e = wrapDbError(ro, 'apply');
    expect(e.code).toBe('TARGET_READ_ONLY');
    expect(e.retriable).toBe(true);
    const other = serverError(1290, 'ER_OPTION_PREVENTS_STATEMENT', 'running with the --skip-grant-tables option');
    expect(wrapDbError(other, 'apply').retriable).toBe(false);
  });
  it('tells a refused statement from one whose outcome is unknown', () => {
    expect(isOutcomeUnknown(serverError(1050, 'ER_TABLE_EXISTS_ERROR'))).toBe(false);
    expect(isOutcomeUnknown(serverError(1205, 'ER_LOCK_WAIT_TIMEOUT'))).toBe(false);
    expect(isOutcomeUnknown(serverError(1927, 'ER_CONNECTION_KILLED'))).toBe(true);
    expect(isOutcomeUnknown(Object.assign(new Error('x'), { code: 'PROTOCOL_CONNECTION_LOST' }))).toBe(true);
  });
  it('knows which DDL errors mean "already done"', () => {
    for (const n of [1007, 1050, 1051, 1060, 1091, 1146]) expect(isDdlAlreadyDone(serverError(n, 'E'))).toBe(true);
    expect(isDdlAlreadyDone(serverError(1064, 'ER_PARSE_ERROR'))).toBe(false);
  });
});

describe('driver values', () => {
  it('converts to record Values', () => {
    expect(fromDriver('18446744073709551615', { name: 'a', type: 'bigint' })).toBe(18446744073709551615n);
    expect(fromDriver(5, { name: 'a', type: 'int' })).toBe(5n);
    expect(fromDriver(2024, { name: 'a', type: 'year' })).toBe(2024n);
    expect(fromDriver(Buffer.from([1, 0]), { name: 'a', type: 'bit' })).toBe(256n);
    expect(fromDriver('1.50', { name: 'a', type: 'decimal' })).toBe('1.50');
    expect(fromDriver(0.5, { name: 'a', type: 'double' })).toBe(0.5);
    expect(fromDriver(Buffer.from('ab'), { name: 'a', type: 'varbinary' })).toEqual(new Uint8Array([0x61, 0x62]));
    expect(fromDriver(null, { name: 'a', type: 'int' })).toBeNull();
    expect(() => fromDriver('x', { name: 'a', type: 'int' })).toThrow(/not an integer/);
  });
});

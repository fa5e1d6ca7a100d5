import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import { binlogPurgedError, isBinlogUnavailable, sourceError } from './errors.ts';

const ep = { host: 'db1', port: 3306, user: 'cap' };

describe('sourceError', () => {
  it('refused / timeout / lost are retriable CONNECT errors naming host:port and user', () => {
    for (const e of [
      { code: 'ECONNREFUSED', errno: -111, message: 'connect ECONNREFUSED' },
      { code: 'ETIMEDOUT', message: 'connect ETIMEDOUT' },
      { code: 'PROTOCOL_CONNECTION_LOST', message: 'lost' },
      { code: 'ER_SERVER_SHUTDOWN', errno: 1053, message: 'shutdown' },
    ]) {
      const t = sourceError(e, ep, 'connect');
      expect(t.code).toBe('CONNECT');
      expect(t.retriable).toBe(true);
      expect(t.message).toContain('db1:3306');
      expect(t.message).toContain('cap');
    }
  });

  it('access denied is a non-retriable AUTH error without the password', () => {
    const t = sourceError(
      {
        code: 'ER_ACCESS_DENIED_ERROR',
        errno: 1045,
        sqlMessage: "Access denied for user 'cap'@'h' (using password: YES)",
      },
      ep,
      'connect',
    );
    expect(t.code).toBe('AUTH');
    expect(t.retriable).toBe(false);
    expect(t.message).toMatch(/access denied for user cap at db1:3306/);
  });

  it('missing privileges and other errors are not retriable', () => {
    expect(sourceError({ errno: 1227, message: 'need REPLICATION SLAVE' }, ep, 'x').code).toBe('PRIVILEGE');
    expect(sourceError({ errno: 1146, message: 'no table' }, ep, 'x')).toMatchObject({
      code: 'SOURCE',
      retriable: false,
    });
    const own = new TidemarkError('mine', { code: 'INTERNAL' });
    expect(sourceError(own, ep, 'x')).toBe(own);
  });

  it('1236 means a new baseline is needed', () => {
    const e = { errno: 1236, code: 'ER_SOURCE_FATAL_ERROR_READING_BINLOG', message: 'Could not find first log file' };
    expect(isBinlogUnavailable(e)).toBe(true);
    const t = binlogPurgedError(e, ep, { kind: 'mysql', binlog: { file: 'bin.000003', offset: 77n } });
    expect(t).toMatchObject({ code: 'BINLOG_PURGED', retriable: false });
    expect(t.message).toContain('bin.000003:77');
    expect(t.message).toContain('new baseline');
    expect(t.message).toContain('--rebaseline');
  });
});

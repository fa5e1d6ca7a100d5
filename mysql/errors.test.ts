import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../core/errors.ts';
import { CODE_TABLE, ERRNO_TABLE } from './errno.ts';
import {
  classifyMysqlError,
  DEFAULT_CODES,
  type ErrorCodes,
  isOutcomeUnknown,
  isReadOnlyError,
  isRetriableDbError,
  type MysqlErrorClass,
  wrapMysqlError,
} from './errors.ts';

function serverError(errno: number, msg = 'boom', code = 'ER_X'): Error {
  return Object.assign(new Error(msg), { errno, code, sqlState: 'HY000', sqlMessage: msg });
}

const READ_ONLY_MSG = 'The MariaDB server is running with the --read-only option so it cannot execute this statement';

describe('the errno table', () => {
  // errno, message, class, retriable, outcome unknown
  const rows: [number, string, MysqlErrorClass, boolean, boolean][] = [
    // capture's former table only: now retried by apply too
    [1077, 'normal shutdown', 'gone', true, true],
    [1152, 'aborted connection', 'gone', true, true],
    [1159, 'net read interrupted', 'gone', true, true],
    [1161, 'net write interrupted', 'gone', true, true],
    [2002, "can't connect through socket", 'connect', true, false],
    [2003, "can't connect to server", 'connect', true, false],
    // apply's former table only: now retried by capture too
    [4031, 'disconnected for inactivity', 'gone', true, true],
    // both
    [1040, 'too many connections', 'connect', true, false],
    [1053, 'shutdown in progress', 'gone', true, true],
    [1927, 'connection was killed', 'gone', true, true],
    [2006, 'server has gone away', 'gone', true, true],
    [2013, 'lost connection', 'gone', true, true],
    [1317, 'query interrupted', 'interrupted', true, false],
    [1205, 'lock wait timeout', 'lock', true, false],
    [1213, 'deadlock', 'lock', true, false],
    [1836, 'read-only mode', 'read-only', true, false],
    [1792, 'read-only transaction', 'read-only', true, false],
    [1290, READ_ONLY_MSG, 'read-only', true, false],
    [4052, 'A slave with the same server_uuid/server_id as this slave has connected', 'connect', true, false],
    [1045, 'access denied', 'auth', false, false],
    [1130, 'host not allowed', 'auth', false, false],
    [1251, 'auth mode', 'auth', false, false],
    [1698, 'access denied (socket)', 'auth', false, false],
    [1862, 'password expired', 'auth', false, false],
    [1044, 'no access to database', 'access', false, false],
    [1142, 'table access denied', 'access', false, false],
    [1143, 'column access denied', 'access', false, false],
    [1227, 'need SUPER', 'access', false, false],
    [1370, 'routine access denied', 'access', false, false],
    [1062, "Duplicate entry '1'", 'duplicate', false, false],
    [1236, 'could not find first log file', 'binlog', false, false],
    [1064, 'syntax error', 'syntax', false, false],
    [1146, "table doesn't exist", 'missing', false, false],
    // message-conditional entries that do not match, and an errno nobody knows: not retriable
    [1290, 'running with the --skip-grant-tables option', 'other', false, false],
    [4052, 'invalid MFA plugin specified', 'other', false, false],
    [9999, 'an errno nobody knows', 'other', false, false],
  ];
  it.each(rows)('errno %i (%s) → %s, retriable %s, outcome unknown %s', (errno, msg, cls, retriable, unknown) => {
    const err = serverError(errno, msg);
    expect(classifyMysqlError(err)).toMatchObject({ cls, retriable, outcomeUnknown: unknown, errno });
    expect(isRetriableDbError(err)).toBe(retriable);
    expect(isOutcomeUnknown(err)).toBe(unknown);
  });

  it('every table entry is in the test above', () => {
    const tested = new Set(rows.map((r) => r[0]));
    for (const errno of ERRNO_TABLE.keys()) expect(tested.has(errno), `errno ${errno}`).toBe(true);
  });

  // driver code (no server errno), class, retriable, outcome unknown
  const codes: [string, MysqlErrorClass, boolean, boolean][] = [
    ['ECONNREFUSED', 'connect', true, false],
    ['ETIMEDOUT', 'connect', true, false],
    ['EHOSTUNREACH', 'connect', true, false],
    ['ENETUNREACH', 'connect', true, false],
    ['EAI_AGAIN', 'connect', true, false],
    ['ER_CON_COUNT_ERROR', 'connect', true, false],
    ['ECONNRESET', 'gone', true, true],
    ['EPIPE', 'gone', true, true],
    ['PROTOCOL_CONNECTION_LOST', 'gone', true, true],
    ['PROTOCOL_SEQUENCE_TIMEOUT', 'gone', true, true],
    ['ERR_STREAM_WRITE_AFTER_END', 'gone', true, true],
    ['ER_SERVER_SHUTDOWN', 'gone', true, true],
    ['ER_CONNECTION_KILLED', 'gone', true, true],
    ['ER_CLIENT_INTERACTION_TIMEOUT', 'gone', true, true],
    // an unknown code: not retriable; no server answer, so whether a statement ran is unknown
    ['SOMETHING_ELSE', 'other', false, true],
  ];
  it.each(codes)('code %s → %s, retriable %s, outcome unknown %s', (code, cls, retriable, unknown) => {
    // Node socket errors carry a negative errno, which is not a server errno.
    const err = Object.assign(new Error(code), { code, errno: code.startsWith('E') ? -104 : undefined });
    expect(classifyMysqlError(err)).toMatchObject({ cls, retriable });
    const noErrno = Object.assign(new Error(code), { code });
    expect(isOutcomeUnknown(noErrno)).toBe(unknown);
  });

  it('every code entry is in the test above', () => {
    const tested = new Set(codes.map((c) => c[0]));
    for (const code of CODE_TABLE.keys()) expect(tested.has(code), code).toBe(true);
  });

  it('a fatal driver error of no known kind is a lost connection; a TidemarkError keeps its own flag', () => {
    const fatal = Object.assign(new Error('x'), { code: 'HANDSHAKE_SSL_ERROR', fatal: true });
    expect(classifyMysqlError(fatal)).toMatchObject({ cls: 'gone', retriable: true, outcomeUnknown: true });
    expect(isRetriableDbError(new TidemarkError('t', { code: 'INTERNAL', retriable: true }))).toBe(true);
    expect(isRetriableDbError(new TidemarkError('t', { code: 'INTERNAL' }))).toBe(false);
    expect(isRetriableDbError(new Error('unknown'))).toBe(false);
    expect(isRetriableDbError(null)).toBe(false);
    expect(isReadOnlyError(serverError(1290, READ_ONLY_MSG))).toBe(true);
  });
});

describe('wrapMysqlError', () => {
  const codes: ErrorCodes = {
    retry: 'REWIND_RETRY',
    failed: 'REWIND_FAILED',
    session: 'REWIND_SESSION',
    byClass: { 'read-only': 'REWIND_READ_ONLY' },
  };

  it('maps the class to the stage family, keeps errno and drops the statement text', () => {
    const err = Object.assign(serverError(1213, 'Deadlock found'), { sql: 'INSERT … secret row data' });
    const w = wrapMysqlError(err, 'insert into t', codes, { table: 't' });
    expect(w).toMatchObject({ code: 'REWIND_RETRY', retriable: true, message: 'insert into t: Deadlock found' });
    expect(w.context).toMatchObject({ table: 't', errno: 1213, sqlState: 'HY000' });
    expect('sql' in err).toBe(false);
    expect(wrapMysqlError(serverError(1146), 'x', codes)).toMatchObject({ code: 'REWIND_FAILED', retriable: false });
    expect(wrapMysqlError(serverError(1836), 'x', codes)).toMatchObject({ code: 'REWIND_READ_ONLY', retriable: true });
    const own = new TidemarkError('mine', { code: 'SOURCE' });
    expect(wrapMysqlError(own, 'x', codes)).toBe(own);
  });

  it('the default family is the one sessions have always reported', () => {
    expect(wrapMysqlError(serverError(2013), 'x', DEFAULT_CODES).code).toBe('APPLY_RETRY');
    expect(wrapMysqlError(serverError(1062), 'x', DEFAULT_CODES).code).toBe('APPLY_DIVERGED');
    expect(wrapMysqlError(serverError(1290, READ_ONLY_MSG), 'x', DEFAULT_CODES).code).toBe('TARGET_READ_ONLY');
    expect(wrapMysqlError(serverError(1064), 'x', DEFAULT_CODES).code).toBe('APPLY_FAILED');
  });
});

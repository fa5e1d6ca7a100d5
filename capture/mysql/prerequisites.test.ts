import { describe, expect, it } from 'vitest';
import { parseGrants } from '../../mysql/grants.ts';
import { evaluatePrerequisites, prerequisiteError, runtimeBinlogProblems, type ServerFacts } from './prerequisites.ts';

const CAP_GRANTS = [
  "GRANT SELECT, REPLICATION SLAVE, BINLOG MONITOR, SLAVE MONITOR ON *.* TO `tidemark_cap`@`127.0.0.1` IDENTIFIED BY PASSWORD '*2B3FF1EAD94E728B80EEC7C8D31F180D1A085246'",
];

function facts(over: Partial<ServerFacts> & { vars?: Record<string, string> } = {}): ServerFacts {
  const vars = {
    log_bin: 'ON',
    binlog_format: 'ROW',
    binlog_row_image: 'FULL',
    binlog_row_metadata: 'FULL',
    server_id: '3411',
    ...over.vars,
  };
  return {
    version: '10.11.19-MariaDB-log',
    currentUser: 'tidemark_cap@127.0.0.1',
    grants: parseGrants(CAP_GRANTS),
    includedSchemas: ['app'],
    ...over,
    variables: new Map(Object.entries(vars)),
  };
}

const opts = { endpoint: { host: '127.0.0.1', port: 3411, user: 'tidemark_cap' }, serverId: 4242, baselineDue: true };

describe('evaluatePrerequisites', () => {
  it('passes a fit server', () => {
    expect(evaluatePrerequisites(facts(), opts)).toEqual([]);
  });

  it('names exactly what to change for binlog_format', () => {
    expect(evaluatePrerequisites(facts({ vars: { binlog_format: 'MIXED' } }), opts)).toEqual([
      'binlog_format is MIXED on 127.0.0.1:3411; tidemark needs ROW: set binlog_format=ROW in the server config ' +
        '(or SET GLOBAL binlog_format=ROW) and restart capture',
    ]);
  });

  it('collects every failure into one error', () => {
    const f = facts({
      vars: { log_bin: 'OFF', binlog_row_image: 'MINIMAL', binlog_row_metadata: 'NO_LOG', server_id: '4242' },
      grants: parseGrants(['GRANT USAGE ON *.* TO `tidemark_cap`@`127.0.0.1`']),
    });
    const failures = evaluatePrerequisites(f, opts);
    expect(failures.map((s) => s.split(' ')[0])).toEqual([
      'log_bin',
      'binlog_row_image',
      'binlog_row_metadata',
      'source.server_id',
      'user',
      'user',
      'user',
    ]);
    expect(failures.join('\n')).toContain("GRANT REPLICATION SLAVE ON *.* TO 'tidemark_cap'@'127.0.0.1'");
    expect(failures.join('\n')).toContain('GRANT SELECT ON `app`.*');
    const err = prerequisiteError(failures, opts.endpoint);
    expect(err.code).toBe('PREREQUISITE');
    expect(err.retriable).toBe(false);
    expect(err.message).toMatch(/^7 prerequisite checks failed on 127.0.0.1:3411:\n- log_bin is OFF/);
  });

  it('refuses servers without binlog_row_metadata and server_id 0', () => {
    const f = facts({ version: '10.4.30-MariaDB', vars: { server_id: '0' } });
    f.variables instanceof Map && (f.variables as Map<string, string>).delete('binlog_row_metadata');
    const failures = evaluatePrerequisites(f, opts);
    expect(failures[0]).toMatch(/runs 10.4.30-MariaDB, which has no binlog_row_metadata/);
    expect(failures[1]).toMatch(/^server_id is 0/);
  });

  it('checks MySQL-only settings and RELOAD for the baseline', () => {
    const f = facts({
      version: '8.4.2',
      vars: { binlog_transaction_compression: 'ON', binlog_row_value_options: 'PARTIAL_JSON' },
      grants: parseGrants(['GRANT SELECT, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `u`@`%`']),
    });
    const failures = evaluatePrerequisites(f, opts);
    expect(failures).toHaveLength(3);
    expect(failures[2]).toMatch(/lacks RELOAD/);
    expect(evaluatePrerequisites(f, { ...opts, baselineDue: false })).toHaveLength(2);
  });
});

describe('runtimeBinlogProblems (re-check while streaming)', () => {
  const ep = { host: 'db', port: 3306, user: 'cap' };
  it('names binlog_format and binlog_row_image when they changed, nothing when fit', () => {
    expect(
      runtimeBinlogProblems(
        new Map([
          ['binlog_format', 'ROW'],
          ['binlog_row_image', 'FULL'],
        ]),
        ep,
      ),
    ).toEqual([]);
    const p = runtimeBinlogProblems(
      new Map([
        ['binlog_format', 'MIXED'],
        ['binlog_row_image', 'MINIMAL'],
      ]),
      ep,
    );
    expect(p).toHaveLength(2);
    expect(p[0]).toMatch(/binlog_format is MIXED on db:3306 .*STATEMENT_DML.*SET GLOBAL binlog_format=ROW/);
    expect(p[1]).toMatch(/binlog_row_image is MINIMAL on db:3306 .*SET GLOBAL binlog_row_image=FULL/);
  });
});

import { describe, expect, it } from 'vitest';
import { backupSchema } from '../config.ts';
import { streamInvocation } from './stream-command.ts';

const streamOf = (stream: Record<string, unknown>) =>
  backupSchema.parse({ stores: [{ name: 'd', kind: 'dir', path: '/x' }], encryption: { key_env: 'K' }, stream }).stream;
const at = { targetDir: '/s/target', optionFile: '/s/account.cnf' };

describe('streamInvocation', () => {
  it('a local mariadb-backup: option file first, the password only in it, host/port without a socket', () => {
    const inv = streamInvocation(
      streamOf({ datadir: '/var/lib/mysql' }),
      { user: 'bk', password: 'pw', host: 'db1', port: 3307 },
      { ...at, incrementalLsn: 123n },
    );
    expect(inv.file).toBe('mariadb-backup');
    expect(inv.args.join(' ')).toBe(
      '--defaults-extra-file=/s/account.cnf --backup --stream=mbstream --target-dir=/s/target ' +
        '--datadir=/var/lib/mysql --incremental-lsn=123',
    );
    expect(inv.optionText).toBe('[mariadb-backup]\nuser=bk\npassword=pw\nhost=db1\nport=3307\n');
  });

  it('ssh prefix, no option file, extra args last; a socket replaces host/port', () => {
    const inv = streamInvocation(
      streamOf({
        command: ['ssh', 'db1', 'sudo', 'mariadb-backup'],
        option_file: 'none',
        extra_args: ['--parallel=2'],
      }),
      { user: 'bk', password: 'pw' },
      { ...at, incrementalLsn: null },
    );
    expect(inv.file).toBe('ssh');
    expect(inv.args.join(' ')).toBe(
      'db1 sudo mariadb-backup --backup --stream=mbstream --target-dir=/s/target --parallel=2',
    );
    expect(inv.optionText).toBeNull();
    const only = streamInvocation(
      streamOf({ option_file: 'only', socket: '/run/m.sock' }),
      { user: 'u', host: 'h' },
      {
        ...at,
        incrementalLsn: null,
      },
    );
    expect(only.args[0]).toBe('--defaults-file=/s/account.cnf');
    expect(only.optionText).toBe('[mariadb-backup]\nuser=u\nsocket=/run/m.sock\n');
  });

  it('refuses a value that would start another option line', () => {
    expect(() =>
      streamInvocation(streamOf({}), { user: 'u', password: 'a\nuser=root' }, { ...at, incrementalLsn: null }),
    ).toThrow(/'password' contains a line break/);
  });
});

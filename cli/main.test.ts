import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { TidemarkError } from '../core/errors.ts';
import type { ForwardOptions, RewindOptions } from './commands/rewind.ts';
import type { RunOptions } from './commands/run.ts';
import type { StatusOptions } from './commands/status.ts';
import type { UndoOptions } from './commands/undo.ts';
import type { VerifyOptions } from './commands/verify.ts';
import { silentLogger } from '../core/log.ts';
import { type Commands, type MainDeps, main } from './main.ts';

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), 'tidemark.mjs');
const PASSWORD = 'very-secret-pw';

let dir: string;
let configFile: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tidemark-main-'));
  configFile = join(dir, 'tidemark.yaml');
  writeFileSync(
    configFile,
    stringify({
      source: { name: 'primary', user: 'cap', password: PASSWORD, include: ['shop.*'] },
      journal: { dir: './journal' },
      targets: [
        { name: 'a', user: 'apply' },
        { name: 'b', user: 'apply' },
      ],
    }),
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
  calls: { name: string; opts: unknown }[];
}

const notCalled = async (): Promise<number> => {
  throw new Error('command should not have been called');
};

async function cli(
  argv: string[],
  opts: { commands?: Partial<Commands>; env?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Outcome> {
  const out: Outcome = { code: -1, stdout: '', stderr: '', calls: [] };
  const record =
    (name: keyof Commands) =>
    async (o: unknown): Promise<number> => {
      out.calls.push({ name, opts: o });
      const impl = opts.commands?.[name] as ((o: unknown) => Promise<number>) | undefined;
      return impl ? impl(o) : notCalled();
    };
  const deps: MainDeps = {
    commands: {
      init: record('init'),
      certs: record('certs'),
      run: record('run'),
      status: record('status'),
      verify: record('verify'),
      skip: record('skip'),
      log: record('log'),
      history: record('history'),
      rewind: record('rewind'),
      forward: record('forward'),
      undo: record('undo'),
      restore: record('restore'),
      restoreBackup: record('restoreBackup'),
      ship: record('ship'),
      failover: record('failover'),
      failback: record('failback'),
      witness: record('witness'),
      switchover: record('switchover'),
      backup: record('backup'),
      drill: record('drill'),
    },
    createLogger: () => silentLogger,
  };
  out.code = await main(
    argv,
    {
      stdout: { write: (s: string) => (out.stdout += s) },
      stderr: { write: (s: string) => (out.stderr += s) },
      env: opts.env ?? {},
      signal: opts.signal ?? new AbortController().signal,
    },
    deps,
  );
  return out;
}

/** Asserts the usual failure shape: exactly one "tidemark: ..." line on stderr, nothing on stdout. */
function expectOneLine(o: Outcome, code: number, pattern: RegExp): void {
  expect(o.code).toBe(code);
  expect(o.stdout).toBe('');
  expect(o.stderr.endsWith('\n')).toBe(true);
  expect(o.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(o.stderr).toMatch(/^tidemark: /);
  expect(o.stderr.trimEnd()).toMatch(pattern);
}

describe('parsing and dispatch', () => {
  it('prints help with every command', async () => {
    const o = await cli(['--help']);
    expect(o.code).toBe(0);
    for (const c of ['init', 'run', 'status', 'verify', 'skip']) expect(o.stdout).toContain(`  ${c} `);
    expect(o.stdout).toContain('Exit codes:');
  });

  it('prints the version', async () => {
    const o = await cli(['--version']);
    expect(o.code).toBe(0);
    expect(o.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it('without a command shows help on stderr and exits 2', async () => {
    const o = await cli([]);
    expect(o.code).toBe(2);
    expect(o.stderr).toContain('Usage: tidemark');
  });

  it('passes run options and the loaded config', async () => {
    const o = await cli(['run', '-c', configFile, '--only', 'apply', '--target', 'b', '--target', 'a'], {
      commands: { run: async () => 0 },
    });
    expect(o.code).toBe(0);
    const opts = o.calls[0]?.opts as RunOptions;
    expect(o.calls[0]?.name).toBe('run');
    expect(opts.only).toBe('apply');
    expect(opts.targets).toEqual(['b', 'a']);
    expect(opts.rebaseline).toBe(false);
    expect(opts.config.source.password).toBe(PASSWORD);
    expect(opts.config.journal.dir).toBe(join(dir, 'journal'));
    expect(opts.signal).toBeInstanceOf(AbortSignal);
  });

  it('run without --only or --target leaves both undefined', async () => {
    const o = await cli(['run', '-c', configFile], { commands: { run: async () => 0 } });
    const opts = o.calls[0]?.opts as RunOptions;
    expect(opts.only).toBeUndefined();
    expect(opts.targets).toBeUndefined();
  });

  it('passes --rebaseline', async () => {
    const o = await cli(['run', '-c', configFile, '--rebaseline'], { commands: { run: async () => 0 } });
    expect(o.calls[0]?.opts).toMatchObject({ rebaseline: true });
  });

  it('failback needs a failover section, and passes --yes, --quarantine and --mirror-dir', async () => {
    const o = await cli(['failback', '-c', configFile, '--yes'], { commands: { failback: async () => 0 } });
    expectOneLine(o, 2, /has no failover section/);
    expect(o.calls).toHaveLength(0);
    const withFailover = join(dir, 'failover.yaml');
    writeFileSync(
      withFailover,
      stringify({
        source: { name: 'primary', user: 'cap', password: PASSWORD, include: ['shop.*'] },
        journal: { dir: './journal' },
        targets: [{ name: 'a', user: 'apply' }],
        failover: { account: { user: 'fo', password: 'fo-pw' } },
      }),
    );
    const ok = await cli(['failback', '-c', withFailover, '--yes', '--quarantine', 'q.sql', '--mirror-dir', 'm'], {
      commands: { failback: async () => 0 },
    });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.calls[0]?.opts).toMatchObject({ yes: true, quarantine: 'q.sql', mirrorDir: 'm' });
    const look = await cli(['failback', '-c', withFailover], { commands: { failback: async () => 0 } });
    expect(look.calls[0]?.opts).toMatchObject({ yes: false, quarantine: undefined, mirrorDir: undefined });
  });

  it('takes the config file from TIDEMARK_CONFIG', async () => {
    const o = await cli(['status', '--json'], {
      env: { TIDEMARK_CONFIG: configFile },
      commands: { status: async () => 0 },
    });
    expect(o.code).toBe(0);
    const opts = o.calls[0]?.opts as StatusOptions;
    expect(opts.json).toBe(true);
    expect(opts.config.file).toBe(configFile);
  });

  it('passes verify options, with defaults', async () => {
    const cmds = { commands: { verify: async () => 3 } };
    const a = await cli(
      ['verify', '-c', configFile, '--table', 'shop.orders', 'shop.items', '--wait-seconds', '5'],
      cmds,
    );
    expect(a.code).toBe(3);
    expect(a.calls[0]?.opts).toMatchObject({ json: false, tables: ['shop.orders', 'shop.items'], waitSeconds: 5 });
    const b = await cli(['verify', '-c', configFile, '--json'], cmds);
    const opts = b.calls[0]?.opts as VerifyOptions;
    expect(opts).toMatchObject({ json: true, waitSeconds: 60 });
    expect(opts.tables).toBeUndefined();
  });

  it('passes skip options: --seq as a bigint, or --to-baseline, and --reason', async () => {
    const cmds = { commands: { skip: async () => 0 } };
    const a = await cli(['skip', '-c', configFile, '--target', 'a', '--seq', '12', '--reason', 'dup key'], cmds);
    expect(a.code).toBe(0);
    expect(a.calls[0]?.opts).toMatchObject({ target: 'a', seq: 12n, toBaseline: false, reason: 'dup key' });
    const b = await cli(['skip', '-c', configFile, '--target', 'b', '--to-baseline'], cmds);
    expect(b.calls[0]?.opts).toMatchObject({ target: 'b', toBaseline: true });
  });

  it('returns the exit code the command returns', async () => {
    const o = await cli(['status', '-c', configFile], { commands: { status: async () => 4 } });
    expect(o.code).toBe(4);
  });
});

describe('usage errors: one line, exit 2, command never called', () => {
  it.each([
    [['run'], /^tidemark: no config file: give -c FILE or set TIDEMARK_CONFIG$/],
    [['run', '-c'], /option '-c, --config <file>' argument missing \(see tidemark run --help\)$/],
    [['run', '-c', 'x.yaml', '--only', 'both'], /'both' is invalid\. Allowed choices are capture, apply/],
    [['run', '-c', 'x.yaml', '--only', 'capture', '--target', 'a'], /--target .* cannot go with --only capture/],
    [['run', '-c', 'x.yaml', '--only', 'apply', '--rebaseline'], /--rebaseline .* cannot go with --only apply/],
    [['status', '-c', 'x.yaml', '--jsn'], /unknown option '--jsn' \(Did you mean --json\?\)/],
    [['verify', '-c', 'x.yaml', '--table', 'nodot'], /'nodot' is invalid\. expected a "schema\.table" name/],
    [['verify', '-c', 'x.yaml', '--wait-seconds', '1.5'], /expected a whole number of seconds/],
    [['skip', '-c', 'x.yaml', '--target', 'a'], /give exactly one of --seq, --to-baseline/],
    [['skip', '-c', 'x.yaml', '--target', 'a', '--seq', '0'], /expected a journal seq/],
    [['frobnicate'], /unknown command 'frobnicate' \(see tidemark --help\)/],
    [['init', 'extra'], /too many arguments/],
  ])('%j', async (argv, pattern) => {
    const o = await cli(argv);
    expectOneLine(o, 2, pattern);
    expect(o.calls).toHaveLength(0);
  });

  it('rejects a --target the config does not define, naming the ones it has', async () => {
    const o = await cli(['run', '-c', configFile, '--target', 'c']);
    expectOneLine(o, 2, /--target c: .* has no such target \(it has: a, b\)$/);
  });

  it('reports a missing config file', async () => {
    const o = await cli(['status', '-c', join(dir, 'nope.yaml')]);
    expectOneLine(
      o,
      2,
      /^tidemark: cannot read config file .*nope\.yaml: no such file \(create one with: tidemark init/,
    );
  });

  it('reports a malformed config file with its line', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'source:\n  name: s\n   user: x\n');
    expectOneLine(await cli(['verify', '-c', bad]), 2, /bad\.yaml: line 2, column \d+: not valid YAML/);
  });
});

describe('runtime errors', () => {
  it('a TidemarkError ends with its cause chain on one line and exit 1', async () => {
    const fail = async (): Promise<number> => {
      throw new TidemarkError('cannot reach source', {
        code: 'CONNECT',
        cause: new Error('connect ECONNREFUSED 127.0.0.1:3307\n  more detail'),
      });
    };
    const o = await cli(['run', '-c', configFile], { commands: { run: fail } });
    expectOneLine(
      o,
      1,
      /^tidemark: cannot reach source: caused by: connect ECONNREFUSED 127\.0\.0\.1:3307 more detail$/,
    );
  });

  it('an unknown error is one line and exit 1; TIDEMARK_DEBUG=1 adds the stack', async () => {
    const boom = async (): Promise<number> => {
      throw new TypeError('x is not a function');
    };
    const plain = await cli(['run', '-c', configFile], { commands: { run: boom } });
    expectOneLine(plain, 1, /^tidemark: unexpected error: x is not a function \(set TIDEMARK_DEBUG=1/);
    const debug = await cli(['run', '-c', configFile], { commands: { run: boom }, env: { TIDEMARK_DEBUG: '1' } });
    expect(debug.code).toBe(1);
    expect(debug.stderr).toMatch(
      /^tidemark: unexpected error: x is not a function\nTypeError: x is not a function\n\s+at /,
    );
  });

  it('a TidemarkError with code USAGE exits 2', async () => {
    const usage = async (): Promise<number> => {
      throw new TidemarkError('no such table shop.x', { code: 'USAGE' });
    };
    expectOneLine(await cli(['verify', '-c', configFile], { commands: { verify: usage } }), 2, /no such table/);
  });

  it('masks the configured password if an error message carries it', async () => {
    const leak = async (): Promise<number> => {
      throw new TidemarkError(`login failed with ${PASSWORD}`, { code: 'AUTH' });
    };
    const o = await cli(['run', '-c', configFile], { commands: { run: leak }, env: { TIDEMARK_DEBUG: '1' } });
    expect(o.stderr).toContain('login failed with [redacted]');
    expect(o.stderr).not.toContain(PASSWORD);
  });
});

describe('stopping', () => {
  const stopped = (signal: 'SIGINT' | 'SIGTERM') => {
    const c = new AbortController();
    c.abort(new TidemarkError(`stopped by ${signal}`, { code: 'STOPPED', context: { signal } }));
    return c.signal;
  };

  it('a command that returns after the stop signal keeps its exit code', async () => {
    const run = async (o: RunOptions) => (o.signal.aborted ? 0 : 1);
    const o = await cli(['run', '-c', configFile], { commands: { run }, signal: stopped('SIGTERM') });
    expect(o.code).toBe(0);
    expect(o.stderr).toBe('');
  });

  it('a command that throws because of the stop reports the signal', async () => {
    const run = async (o: RunOptions): Promise<number> => {
      throw o.signal.reason;
    };
    expectOneLine(
      await cli(['run', '-c', configFile], { commands: { run }, signal: stopped('SIGINT') }),
      130,
      /^tidemark: stopped by SIGINT$/,
    );
    const abortError = async (): Promise<number> => {
      throw new DOMException('The operation was aborted', 'AbortError');
    };
    const o = await cli(['run', '-c', configFile], { commands: { run: abortError }, signal: stopped('SIGTERM') });
    expect(o.code).toBe(143);
  });
});

describe('the executable', () => {
  // PATH starts with the running Node so the "#!/usr/bin/env -S node ..." line finds Node >= 22.12.
  const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env['PATH'] ?? ''}`, TIDEMARK_DEBUG: '' };

  it('runs through its shebang and prints help', () => {
    const r = spawnSync(CLI, ['--help'], { encoding: 'utf8', env });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Usage: tidemark');
  });

  it('ends a config error with one stderr line and exit 2', () => {
    const r = spawnSync(process.execPath, [CLI, 'run', '-c', join(dir, 'nope.yaml')], { encoding: 'utf8', env });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^tidemark: cannot read config file [^\n]*\n$/);
  });
});

describe('rewind commands', () => {
  it('lists them in help', async () => {
    const o = await cli(['--help']);
    for (const c of ['log', 'history', 'rewind', 'forward', 'undo', 'restore']) expect(o.stdout).toContain(`  ${c} `);
  });

  it('rewind takes exactly one of --to-time, --steps, --before-tx', async () => {
    const ok = { commands: { rewind: async () => 0 } };
    let o = await cli(['rewind', '-c', configFile, '--target', 'a', '--to-time', '2026-11-22T10:41:59.5Z'], ok);
    expect(o.code).toBe(0);
    expect((o.calls[0]?.opts as RewindOptions | undefined)?.spec).toEqual({ kind: 'time', timeUs: 1795344119500000n });
    o = await cli(['rewind', '-c', configFile, '--target', 'a', '--steps', '3', '--unit', 'row', '--dry-run'], ok);
    const opts = o.calls[0]?.opts as RewindOptions;
    expect(opts.spec).toEqual({ kind: 'steps', steps: 3, unit: 'row' });
    expect(opts.dryRun).toBe(true);
    expectOneLine(
      await cli(['rewind', '-c', configFile, '--target', 'a', '--steps', '3', '--before-tx', '0-1-2'], ok),
      2,
      /exactly one of --to-time, --steps, --before-tx \(got --steps and --before-tx\)/,
    );
    expectOneLine(await cli(['rewind', '-c', configFile, '--target', 'a'], ok), 2, /exactly one of/);
    expectOneLine(await cli(['rewind', '-c', configFile, '--target', 'a', '--steps', '0'], ok), 2, /1 or more/);
    expectOneLine(
      await cli(['rewind', '-c', configFile, '--target', 'a', '--to-time', 'yesterday'], ok),
      2,
      /"yesterday" is not a time/,
    );
  });

  it('forward and undo pass their options', async () => {
    let o = await cli(['forward', '-c', configFile, '--target', 'a', '--to-head'], {
      commands: { forward: async () => 0 },
    });
    expect((o.calls[0]?.opts as ForwardOptions | undefined)?.spec).toEqual({ kind: 'head' });
    o = await cli(['undo', '-c', configFile, '--target', 'a', '--tx', '0-1-5', '--mode', 'cascade', '--sql', 'x.sql'], {
      commands: { undo: async () => 0 },
    });
    const u = o.calls[0]?.opts as UndoOptions;
    expect([u.txId, u.mode, u.sqlFile, u.yes]).toEqual(['0-1-5', 'cascade', 'x.sql', false]);
    expectOneLine(
      await cli(['undo', '-c', configFile, '--target', 'a', '--tx', '1', '--mode', 'all'], {
        commands: { undo: async () => 0 },
      }),
      2,
      /--mode/,
    );
  });

  it('restore masks a password given in the --into URL', async () => {
    const o = await cli(['restore', '-c', configFile, '--to-time', '1', '--into', 'mysql://u:s3cr3t-pw@h:1'], {
      commands: {
        restore: async () => {
          throw new TidemarkError('cannot connect: mysql://u:s3cr3t-pw@h:1 refused', { code: 'CONNECT' });
        },
      },
    });
    expect(o.code).toBe(1);
    expect(o.stderr).not.toContain('s3cr3t-pw');
  });
});

describe('restore: journal mode (--to-time) and backup mode (--backup)', () => {
  const ok = { commands: { restore: async () => 0, restoreBackup: async () => 0 } };
  it('--backup without a config: store dir, key from $TIDEMARK_BACKUP_KEY', async () => {
    const o = await cli(['restore', '--backup', 'B1', '--into', '/srv/restore', '--store-dir', '/srv/backups'], ok);
    expect(o.code).toBe(0);
    expect(o.calls.map((c) => c.name)).toEqual(['restoreBackup']);
    expect(o.calls[0]?.opts).toMatchObject({
      id: 'B1',
      into: '/srv/restore',
      store: { kind: 'dir', path: '/srv/backups' },
      key: { env: 'TIDEMARK_BACKUP_KEY' },
    });
  });

  it('--backup with an S3 store, endpoint from the env, a key file', async () => {
    const o = await cli(
      ['restore', '--backup', 'B1', '--into', 'd', '--store-s3', 's3://bk-bucket/site-a', '--key-file', 'k'],
      { ...ok, env: { TIDEMARK_S3_ENDPOINT: 'http://127.0.0.1:7300', AWS_REGION: 'eu-west-1' } },
    );
    expect(o.code).toBe(0);
    expect(o.calls[0]?.opts).toMatchObject({
      store: {
        kind: 's3',
        bucket: 'bk-bucket',
        prefix: 'site-a/',
        endpoint: 'http://127.0.0.1:7300',
        region: 'eu-west-1',
      },
      key: { file: 'k' },
    });
  });

  it('the two modes are exclusive, and their flags stay with their mode', async () => {
    const both = await cli(['restore', '-c', configFile, '--to-time', '1', '--backup', 'B1', '--into', 'd']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('give exactly one of --to-time, --backup (got --to-time and --backup)');
    const none = await cli(['restore', '-c', configFile, '--into', 'd']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('give exactly one of --to-time, --backup');
    const stray = await cli([
      'restore',
      '-c',
      configFile,
      '--to-time',
      '1',
      '--into',
      'mysql://u@h',
      '--store-dir',
      's',
    ]);
    expect(stray.code).toBe(2);
    expect(stray.stderr).toContain('--store-dir goes with --backup');
    const noStore = await cli(['restore', '--backup', 'B1', '--into', 'd']);
    expect(noStore.code).toBe(2);
    expect(noStore.stderr).toContain('the backup store: a config with a backup: section (-c), or --store-dir DIR');
    const url = await cli(['restore', '--backup', 'B1', '--into', 'mysql://u@h', '--store-dir', 's']);
    expect(url.code).toBe(2);
    expect(url.stderr).toContain('a directory, not a URL');
    const badS3 = await cli(['restore', '--backup', 'B1', '--into', 'd', '--store-s3', 'http://x']);
    expect(badS3.code).toBe(2);
    expect(badS3.stderr).toContain('expected s3://BUCKET');
    for (const o of [both, none, stray, noStore, url, badS3]) expect(o.calls).toHaveLength(0);
  });

  it('drill: flags to the command, --history without a scratch port', async () => {
    const o = await cli(['drill', 'db', '-c', configFile, '--log-job', 'L', '--scratch-port', '3999', '--wait', '5'], {
      commands: { drill: async () => 0 },
    });
    expect(o.code, o.stderr).toBe(0);
    expect(o.calls[0]?.opts).toMatchObject({
      job: 'db',
      logJob: 'L',
      scratchPort: 3999,
      waitSeconds: 5,
      history: false,
    });
    const h = await cli(['drill', 'db', '-c', configFile, '--history', '--json'], {
      commands: { drill: async () => 0 },
    });
    expect(h.calls[0]?.opts).toMatchObject({ job: 'db', history: true, json: true, waitSeconds: 60 });
    const bad = await cli(['drill', 'db', '-c', configFile, '--scratch-port', '0']);
    expect(bad.code).toBe(2);
    expect(bad.calls).toHaveLength(0);
  });

  it('--to-time still runs the journal restore', async () => {
    const o = await cli(['restore', '-c', configFile, '--to-time', '1', '--into', 'mysql://u@h:1'], ok);
    expect(o.code).toBe(0);
    expect(o.calls.map((c) => c.name)).toEqual(['restore']);
    expect(o.calls[0]?.opts).toMatchObject({ toTimeUs: 1n, into: 'mysql://u@h:1' });
  });

  it('point-in-time mode: --job with --to-gtid or --to-time, a log job and a scratch port', async () => {
    const base = ['restore', '--job', 'db', '--into', '/srv/pit', '--store-dir', '/srv/backups'];
    const g = await cli([...base, '--to-gtid', '0-1-42', '--log-job', 'db-logs', '--scratch-port', '3999'], {
      ...ok,
      env: { TIDEMARK_SCRATCH_PASSWORD: 'scratch-pw' },
    });
    expect(g.code, g.stderr).toBe(0);
    expect(g.calls.map((c) => c.name)).toEqual(['restoreBackup']);
    expect(g.calls[0]?.opts).toMatchObject({
      into: '/srv/pit',
      pointInTime: { job: 'db', logJob: 'db-logs', target: { gtid: '0-1-42' }, scratchPort: 3999, scratchUser: 'root' },
    });
    const t = await cli([...base, '--to-time', '2026-12-06T10:00:00Z', '--log-job', 'L', '--scratch-port', '3999'], ok);
    expect(t.code, t.stderr).toBe(0);
    expect(t.calls[0]?.opts).toMatchObject({
      pointInTime: { target: { time: new Date('2026-12-06T10:00:00Z') } },
    });
    const noLogJob = await cli([...base, '--to-gtid', '0-1-42', '--scratch-port', '3999'], ok);
    expect(noLogJob.stderr).toContain('--job db needs its log job');
    const noPort = await cli([...base, '--to-gtid', '0-1-42', '--log-job', 'L'], ok);
    expect(noPort.stderr).toContain('needs --scratch-port');
    const both = await cli([...base, '--to-gtid', '0-1-42', '--to-time', '1', '--log-job', 'L'], ok);
    expect(both.stderr).toContain('give exactly one of --to-time, --to-gtid');
    const withBackup = await cli([...base, '--to-gtid', '0-1-42', '--backup', 'B1'], ok);
    expect(withBackup.stderr).toContain('not both');
    const stray = await cli(['restore', '-c', configFile, '--to-time', '1', '--into', 'mysql://u@h', '--log-job', 'L']);
    expect(stray.stderr).toContain('--log-job goes with --backup or --job');
    for (const o of [noLogJob, noPort, both, withBackup, stray]) {
      expect(o.code).toBe(2);
      expect(o.calls).toHaveLength(0);
    }
  });
});

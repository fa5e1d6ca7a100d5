import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError } from '../core/errors.ts';
import { type Config, loadConfig, parseConfig } from './config.ts';

const SECRET = 'S3cret-Pw!xyz';
const FILE = '/etc/tidemark/tidemark.yaml';

type Obj = Record<string, unknown>;
interface Raw {
  source: Obj;
  journal: Obj;
  targets: Obj[];
  [key: string]: unknown;
}

/** A minimal valid config as a plain object; tests mutate a fresh copy. */
function base(): Raw {
  return {
    source: { name: 'primary', port: 3307, user: 'tidemark_cap', password_env: 'TM_TEST_SRC_PW', include: ['shop.*'] },
    journal: { dir: './journal' },
    targets: [{ name: 'replica', port: 3308, user: 'tidemark_apply', password: SECRET }],
  };
}

function parse(obj: unknown): Config {
  return parseConfig(stringify(obj), FILE);
}

/** The ConfigError message thrown for `text`; fails the test if it parses. */
function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError, but the config was accepted');
}

const errorFor = (obj: unknown) => errorOf(() => parse(obj));
const errorForText = (text: string) => errorOf(() => parseConfig(text, FILE));

beforeEach(() => {
  vi.stubEnv('TM_TEST_SRC_PW', 'from-env-pw');
});
afterEach(() => {
  vi.unstubAllEnvs();
});

describe('valid config', () => {
  it('fills defaults and resolves paths against the config file directory', () => {
    const c = parse({ ...base(), log: { file: 'logs/t.log' } });
    expect(c.file).toBe(FILE);
    expect(c.source).toMatchObject({ host: '127.0.0.1', port: 3307, kind: 'mysql', server_id: 4242, exclude: [] });
    expect(c.source.baseline.chunk_rows).toBe(5000);
    expect(c.journal).toMatchObject({ dir: '/etc/tidemark/journal', fsync: 'transaction', group_commit_ms: 10 });
    expect(c.journal.segment_bytes).toBe(64 << 20);
    expect(c.journal.retention.keep_hours).toBe(168);
    expect(c.targets[0]).toMatchObject({ name: 'replica', no_primary_key: 'full-row' });
    expect(c.targets[0]?.batch).toEqual({ max_transactions: 500, max_rows: 20_000, max_wait_ms: 5 });
    expect(c.log).toEqual({ level: 'info', file: '/etc/tidemark/logs/t.log' });
    expect(c.metrics).toBeUndefined();
  });

  it('resolves password, password_env and password_file, keeping the value reachable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-config-'));
    try {
      writeFileSync(join(dir, 'pw'), 'file-pw\n');
      const obj = base();
      obj['targets'].push({ name: 'second', user: 'u', password_file: 'pw' });
      const c = parseConfig(stringify(obj), join(dir, 'tidemark.yaml'));
      expect(c.source.password).toBe('from-env-pw');
      expect(c.targets[0]?.password).toBe(SECRET);
      expect(c.targets[1]?.password).toBe('file-pw');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('accepts no password at all (socket / passwordless auth)', () => {
    const obj = base();
    delete obj['source'].password_env;
    expect(parse(obj).source.password).toBeUndefined();
  });

  it('resolves tls file paths relative to the config file', () => {
    const obj = base();
    obj['source'].tls = { ca_file: 'certs/ca.pem' };
    expect(parse(obj).source.tls).toMatchObject({ ca_file: '/etc/tidemark/certs/ca.pem', reject_unauthorized: true });
  });
});

describe('malformed YAML', () => {
  it('names the file and the line', () => {
    const msg = errorForText('source:\n  name: primary\n   user: x\n');
    expect(msg).toMatch(/^\/etc\/tidemark\/tidemark\.yaml: line 2, column \d+: not valid YAML: /);
    expect(msg).not.toContain('\n');
  });

  it('reports duplicate keys with their line', () => {
    expect(errorForText('journal: {dir: a}\njournal: {dir: b}\n')).toMatch(
      /line 2.*not valid YAML: Map keys must be unique/,
    );
  });

  it('rejects an empty file and a non-mapping document', () => {
    expect(errorForText('')).toMatch(/expected a YAML mapping/);
    expect(errorForText('- a\n- b\n')).toMatch(/expected a YAML mapping/);
    expect(errorForText('just a string\n')).toMatch(/expected a YAML mapping/);
  });
});

describe('schema violations name the key', () => {
  it.each([
    ['source.include', (o: Raw) => delete o['source'].include],
    ['source.user', (o: Raw) => delete o['source'].user],
    ['source.name', (o: Raw) => delete o['source'].name],
    ['journal.dir', (o: Raw) => delete o['journal'].dir],
    ['journal', (o: Raw) => delete (o as Obj)['journal']],
    ['targets', (o: Raw) => delete (o as Obj)['targets']],
    ['targets.0.user', (o: Raw) => delete o['targets'][0]!.user],
  ])('missing required key %s', (key, mutate) => {
    const obj = base();
    mutate(obj);
    expect(errorFor(obj)).toContain(`${key}: required`);
  });

  it('wrong type names the key and the expected type', () => {
    const obj = base();
    obj['source'].port = '3307';
    obj['journal'].group_commit_ms = true;
    obj['source'].include = 'shop.*';
    const msg = errorFor(obj);
    expect(msg).toContain('source.port: Invalid input: expected number, received string');
    expect(msg).toContain('journal.group_commit_ms: Invalid input: expected number');
    expect(msg).toContain('source.include: Invalid input: expected array');
  });

  it.each([
    ['bogus', (o: Raw) => (o['bogus'] = 1)],
    ['source.pasword_env', (o: Raw) => (o['source'].pasword_env = 'X')],
    ['targets.0.hots', (o: Raw) => (o['targets'][0]!.hots = 'db')],
    ['targets.0.batch.max_row', (o: Raw) => (o['targets'][0]!.batch = { max_row: 1 })],
    ['journal.retention.keep_days', (o: Raw) => (o['journal'].retention = { keep_days: 1 })],
    ['source.tls.ca', (o: Raw) => (o['source'].tls = { ca: 'x' })],
    ['log.colour', (o: Raw) => (o['log'] = { colour: 'blue' })],
  ])('unknown key %s is named', (key, mutate) => {
    const obj = base();
    mutate(obj);
    expect(errorFor(obj)).toContain(`${key}: unknown key`);
  });

  it.each([0, 65536, 70000, -1, 3306.5])('port %s is rejected', (port) => {
    const obj = base();
    obj['targets'][0]!.port = port;
    expect(errorFor(obj)).toMatch(/targets\.0\.port: /);
  });

  it('names the allowed values of an enum', () => {
    const obj = base();
    obj['journal'].fsync = 'always';
    expect(errorFor(obj)).toContain('journal.fsync: Invalid option: expected one of "transaction"|"group"');
  });

  it('rejects malformed table patterns and names', () => {
    const obj = base();
    obj['source'].include = ['shop'];
    obj['source'].name = 'has space';
    const msg = errorFor(obj);
    expect(msg).toContain('source.include.0: a "schema.table" pattern');
    expect(msg).toContain('source.name: a name of 1-64');
  });

  it('rejects an empty include list and an empty target list', () => {
    const obj = base();
    obj['source'].include = [];
    obj['targets'] = [];
    const msg = errorFor(obj);
    expect(msg).toContain('source.include: Too small');
    expect(msg).toContain('targets: Too small');
  });

  it('rejects duplicate target names', () => {
    const obj = base();
    obj['targets'].push({ name: 'replica', user: 'x' });
    expect(errorFor(obj)).toBe(`${FILE}: targets.1.name: "replica" is used twice`);
  });

  it('rejects more than one password source', () => {
    const obj = base();
    obj['source'].password = SECRET;
    expect(errorFor(obj)).toContain('source: give at most one of password, password_env, password_file');
  });

  it('reports a password_env whose variable is not set', () => {
    vi.stubEnv('TM_TEST_SRC_PW', undefined);
    expect(errorFor(base())).toBe('source.password_env: environment variable TM_TEST_SRC_PW is not set');
  });

  it('reports an unreadable password_file', () => {
    const obj = base();
    obj['targets'][0] = { name: 'replica', user: 'u', password_file: 'no-such-file' };
    expect(errorFor(obj)).toMatch(/^targets\.0\.password_file: cannot read \/etc\/tidemark\/no-such-file \(ENOENT\)$/);
  });

  it('caps a long list of problems', () => {
    const obj: Record<string, unknown> = base();
    for (let i = 0; i < 15; i++) obj[`extra${i}`] = i;
    const msg = errorFor(obj);
    expect(msg).toContain('extra9: unknown key');
    expect(msg).not.toContain('extra10: unknown key');
    expect(msg).toMatch(/and 5 more$/);
  });
});

describe('secrets', () => {
  it('never serialize: JSON.stringify, spread and Object.keys do not see the password', () => {
    const c = parse(base());
    expect(JSON.stringify(c)).not.toContain(SECRET);
    expect(JSON.stringify(c)).not.toContain('from-env-pw');
    expect(Object.keys(c.targets[0] ?? {})).not.toContain('password');
    expect(JSON.stringify(c.targets.map((t) => ({ ...t })))).not.toContain(SECRET);
  });

  // Every way a config holding a password can be wrong: the message must never quote it.
  it.each([
    ['wrong type elsewhere', `${stringify(base())}\nlog: {level: loud}\n`],
    ['unknown key next to it', stringify({ ...base(), targets: [{ ...base()['targets'][0], pwd: SECRET }] })],
    ['password of the wrong type', stringify({ ...base(), targets: [{ name: 't', user: 'u', password: 12345678 }] })],
    ['two password sources', stringify({ ...base(), source: { ...base()['source'], password: SECRET } })],
    ['unclosed quote', `source:\n  user: u\n  password: "${SECRET}\njournal: {dir: j}\n`],
    ['nested mapping on the password line', `source:\n  password: ${SECRET}: x\n   user: u\n`],
    ['bad indentation after the password', `targets:\n  - password: ${SECRET}\n     user: u\n`],
    ['tab indentation', `source:\n\tpassword: ${SECRET}\n`],
    ['secret as a key', `${SECRET}: 1\n`],
    ['no space after the colon (flow style)', `source: {name: s, user: u, password:${SECRET}, include: [a.b]}\n`],
    ['no space after the colon (block style)', `source:\n  user: u\n  password:${SECRET}\n`],
    ['the inline password repeated as a key', `${stringify(base())}extra: {password: ${SECRET}}\n`],
    ['a name-like password repeated as a key', `targets: [{name: t, user: u, password: hunter22, hunter22}]\n`],
    ['duplicate target names', stringify({ ...base(), targets: [base()['targets'][0], base()['targets'][0]] })],
  ])('is absent from the error for: %s', (_what, text) => {
    const msg = errorForText(text);
    expect(msg).not.toContain(SECRET);
    expect(msg).not.toContain('12345678');
    expect(msg).not.toContain('hunter22');
  });

  it('reaches no warning either (yaml warnings quote the file)', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      parse({ ...base(), targets: [{ name: 't', user: 'u' }] });
      expect(() => parseConfig(`source:\n  password: !!int ${SECRET}\n`, FILE)).toThrow(ConfigError);
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });

  it('masks a password_env value that some message might carry', () => {
    vi.stubEnv('TM_TEST_SRC_PW', 'env-secret-value');
    const obj = base();
    obj['source']['env-secret-value'] = 1;
    expect(errorFor(obj)).not.toContain('env-secret-value');
  });

  it('is absent from the error when password_env is missing', () => {
    const obj = base();
    obj['source'].password_env = 'TM_TEST_UNSET_VAR';
    expect(errorFor(obj)).not.toContain(SECRET);
  });
});

describe('loadConfig', () => {
  it('explains a missing file', () => {
    const msg = errorOf(() => loadConfig('/nonexistent/tidemark.yaml'));
    expect(msg).toBe(
      'cannot read config file /nonexistent/tidemark.yaml: no such file (create one with: tidemark init -o /nonexistent/tidemark.yaml)',
    );
  });

  it('reports a directory given as the file', () => {
    expect(errorOf(() => loadConfig(tmpdir()))).toMatch(/cannot read config file .* \(EISDIR\)$/);
  });

  it('reads and parses a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-config-'));
    try {
      writeFileSync(join(dir, 'c.yaml'), stringify(base()));
      const c = loadConfig(join(dir, 'c.yaml'));
      expect(c.journal.dir).toBe(join(dir, 'journal'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('source.accounts', () => {
  it('defaults to none and takes users as user@host and roles by name', () => {
    expect(parse(base()).source.accounts).toEqual([]);
    const raw = base();
    (raw['source'] as Record<string, unknown>)['accounts'] = ['app@%', 'report@10.0.0.%', 'reader'];
    expect(parse(raw).source.accounts).toEqual(['app@%', 'report@10.0.0.%', 'reader']);
  });
  it('refuses an entry without a user, naming the key', () => {
    const raw = base();
    (raw['source'] as Record<string, unknown>)['accounts'] = ['@%'];
    expect(errorFor(raw)).toMatch(/source\.accounts.*user@host/s);
  });
});

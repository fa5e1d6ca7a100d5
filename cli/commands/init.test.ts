import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { TidemarkError } from '../../core/errors.ts';
import { configSchema, parseConfig } from '../../config/config.ts';
import { shipSchema } from '../../config/config-sites.ts';
import { pgTargetSchema } from '../../apply/postgres/config.ts';
import { pgSourceSchema } from '../../capture/postgres/config.ts';
import { exampleConfigText, initCommand } from './init.ts';

let dir: string;
let printed: string;
const stdout = { write: (s: string) => (printed += s) };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tidemark-init-'));
  printed = '';
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  vi.unstubAllEnvs();
});

describe('the example config', () => {
  it('parses with the real schema (docs cannot drift from config/config.ts)', () => {
    vi.stubEnv('TIDEMARK_SOURCE_PASSWORD', 'cap-pw');
    vi.stubEnv('TIDEMARK_TARGET_PASSWORD', 'apply-pw');
    const c = parseConfig(exampleConfigText(), join(dir, 'tidemark.yaml'));
    expect(c.source).toMatchObject({ host: '127.0.0.1', port: 3307, user: 'tidemark_cap' });
    expect(c.source.password).toBe('cap-pw');
    expect(c.targets).toHaveLength(1);
    expect(c.targets[0]).toMatchObject({ name: 'replica', port: 3308, user: 'tidemark_apply' });
    expect(c.targets[0]?.password).toBe('apply-pw');
    expect(c.journal.dir).toBe(join(dir, 'tidemark-data/journal'));
  });

  it('spells out every default the schema has', () => {
    // Parsing {} with only the required keys yields every default; the example must state the same values.
    const example = parseYaml(exampleConfigText());
    const minimal = configSchema.parse({
      source: { name: 'primary', user: 'u', include: ['a.b'] },
      journal: { dir: 'j' },
      targets: [{ name: 'replica', user: 'u' }],
    });
    const { include: _i, exclude: _e, port: _p, user: _u, password_env: _pe, ...sourceRest } = example.source;
    const { port: _tp, user: _tu, password_env: _tpe, ...targetRest } = example.targets[0];
    expect(sourceRest).toEqual({
      ...minimal.source,
      include: undefined,
      exclude: undefined,
      port: undefined,
      user: undefined,
    });
    expect(targetRest).toEqual({ ...minimal.targets[0], port: undefined, user: undefined });
    expect(example.journal).toEqual({ ...minimal.journal, dir: example.journal.dir });
    expect(example.log).toEqual(minimal.log);
  });

  it('documents every key of the schema', () => {
    const text = exampleConfigText();
    const keys = [
      ...Object.keys(configSchema.shape),
      ...Object.keys(configSchema.shape.source.shape),
      ...Object.keys(configSchema.shape.journal.shape),
      ...Object.keys(configSchema.shape.targets.element.shape),
      'ca_file',
      'cert_file',
      'key_file',
      'reject_unauthorized',
      'chunk_rows',
      'keep_hours',
      'max_transactions',
      'max_rows',
      'max_wait_ms',
      'level',
      'file',
      ...Object.keys(shipSchema.shape),
      'transport',
      'address',
      'listen',
      'journal_dir',
      'brokers',
      'topic',
      'client_id',
      'key',
      'db',
      'password_env',
      'durability',
    ];
    for (const key of new Set(keys)) expect(text, `key ${key}`).toMatch(new RegExp(`^\\s*#?\\s*(- )?${key}:`, 'm'));
  });
});

describe('tidemark init', () => {
  it('writes the example, readable only by its owner', async () => {
    const out = join(dir, 'sub', 'tidemark.yaml');
    expect(await initCommand({ output: out, force: false, stdout })).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(exampleConfigText());
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(printed).toContain(`wrote ${out}`);
  });

  it('refuses to overwrite without --force', async () => {
    const out = join(dir, 'tidemark.yaml');
    writeFileSync(out, 'mine\n');
    const err = await initCommand({ output: out, force: false, stdout }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).code).toBe('USAGE');
    expect((err as Error).message).toBe(`${out} already exists; use --force to overwrite it`);
    expect(readFileSync(out, 'utf8')).toBe('mine\n');
  });

  it('overwrites with --force', async () => {
    const out = join(dir, 'tidemark.yaml');
    writeFileSync(out, 'mine\n');
    expect(await initCommand({ output: out, force: true, stdout })).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(exampleConfigText());
  });

  it('prints to stdout with -o -', async () => {
    expect(await initCommand({ output: '-', force: false, stdout })).toBe(0);
    expect(printed).toBe(exampleConfigText());
  });

  it('reports a path it cannot write as a runtime error', async () => {
    const blocker = join(dir, 'file');
    writeFileSync(blocker, '');
    const err = await initCommand({ output: join(blocker, 'x.yaml'), force: false, stdout }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).code).toBe('IO');
  });
});

describe('tidemark init --engine postgres', () => {
  it('writes the PostgreSQL example: it parses with the real schema, source and target of kind postgres', async () => {
    vi.stubEnv('TIDEMARK_SOURCE_PASSWORD', 'cap-pw');
    vi.stubEnv('TIDEMARK_TARGET_PASSWORD', 'apply-pw');
    const out = join(dir, 'pg.yaml');
    expect(await initCommand({ output: out, force: false, engine: 'postgres', stdout })).toBe(0);
    const text = readFileSync(out, 'utf8');
    expect(text).toBe(exampleConfigText('postgres'));
    const c = parseConfig(text, out);
    expect(c.source).toMatchObject({ kind: 'postgres', port: 5490, user: 'tidemark_cap', database: 'shop' });
    expect(c.source.password).toBe('cap-pw');
    expect(c.targets).toHaveLength(1);
    expect(c.targets[0]).toMatchObject({ kind: 'postgres', port: 5491, user: 'tidemark_apply', database: 'shop' });
    expect(c.targets[0]?.password).toBe('apply-pw');
  });

  it('documents every key of the PostgreSQL source and target, and the prerequisites a DBA runs', () => {
    const text = exampleConfigText('postgres');
    const keys = [...Object.keys(pgSourceSchema.shape), ...Object.keys(pgTargetSchema.shape)];
    for (const key of new Set(keys)) expect(text, `key ${key}`).toMatch(new RegExp(`^\\s*#?\\s*(- )?${key}:`, 'm'));
    for (const step of [
      'wal_level = logical',
      'LOGIN REPLICATION',
      'REPLICA IDENTITY FULL',
      'CREATE PUBLICATION',
      'GRANT SET ON PARAMETER session_replication_role',
    ])
      expect(text).toContain(step);
  });

  it('refuses an engine it has no example for', async () => {
    const err = await initCommand({ output: '-', force: false, engine: 'oracle' as 'mysql', stdout }).catch(
      (e: unknown) => e,
    );
    expect((err as TidemarkError).code).toBe('USAGE');
    expect(printed).toBe('');
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError } from '../core/errors.ts';
import { toySource } from '../test/engine/toy/source.ts';
import { toyTarget } from '../test/engine/toy/target.ts';
import { parseConfig } from './config.ts';
import {
  registerEngine,
  requireCapability,
  sourceAdapter,
  sourceAdapterOf,
  sourceKinds,
  targetAdapterOf,
  targetKinds,
  unregisterEngine,
} from './engines.ts';

const FILE = '/etc/tidemark/tidemark.yaml';
const mysqlTarget = { name: 'replica', port: 3308, user: 'tidemark_apply', password: 'pw-apply' };
const toyTargetEntry = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  kind: 'toyk',
  file: `/data/${name}.db`,
  ...extra,
});
const doc = (source: Record<string, unknown>, targets: Record<string, unknown>[]) =>
  stringify({ source, journal: { dir: './journal' }, targets });
const toySourceSection = { kind: 'toyk', name: 'src', file: '/data/source.db' };

function configError(text: string): string {
  try {
    parseConfig(text, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError, but the config was accepted');
}

beforeAll(() => registerEngine({ source: toySource('toyk'), target: toyTarget('toyk') }));
afterAll(() => unregisterEngine('toyk'));

describe('the engine registry', () => {
  it('knows MySQL as the default kind and refuses an unknown kind naming the key and the known kinds', () => {
    expect(sourceAdapterOf(undefined).kind).toBe('mysql');
    expect(targetAdapterOf(undefined).kind).toBe('mysql');
    expect(sourceKinds()).toEqual(['mysql', 'postgres', 'toyk']);
    expect(targetKinds()).toEqual(['mysql', 'postgres', 'toyk']);
    expect(sourceAdapter({ kind: 'toyk', name: 's' }).positionEngine).toBe('toyk');
    expect(() => sourceAdapterOf('oracle')).toThrow(
      'source.kind: unknown engine "oracle" (known: mysql, postgres, toyk)',
    );
    expect(() => targetAdapterOf('pg', 'targets.2.kind')).toThrow('targets.2.kind: unknown engine "pg"');
  });

  it('refuses a second, different adapter for a registered kind', () => {
    expect(() => registerEngine({ source: toySource('toyk') })).toThrow(/already registered/);
  });
});

describe('config sections validated by the adapter of their kind', () => {
  it('loads a toy source with toy and MySQL targets, each entry by its own schema', () => {
    const c = parseConfig(doc(toySourceSection, [toyTargetEntry('near'), mysqlTarget]), FILE);
    expect(c.source).toMatchObject({ kind: 'toyk', name: 'src', file: '/data/source.db', poll_ms: 20 });
    expect(c.targets[0]).toMatchObject({ kind: 'toyk', name: 'near', file: '/data/near.db' });
    expect(c.targets[1]).toMatchObject({ kind: 'mysql', name: 'replica', host: '127.0.0.1', port: 3308 });
    // The MySQL target's password is resolved and kept out of JSON as before.
    expect(c.targets[1]?.password).toBe('pw-apply');
    expect(JSON.stringify(c)).not.toContain('pw-apply');
  });

  it('loads a PostgreSQL source by its own schema: defaults filled, password resolved and hidden, strict', () => {
    const pgSource = { kind: 'postgres', name: 'pgsrc', user: 'tidemark_cap', password: 'pw-cap', database: 'app' };
    const c = parseConfig(doc(pgSource, [toyTargetEntry('near')]), FILE);
    expect(c.source).toMatchObject({
      kind: 'postgres',
      host: '127.0.0.1',
      port: 5432,
      publication: 'tidemark',
      slot: 'tidemark',
      include: ['*.*'],
      exclude: [],
      identity_full_opt_out: [],
      baseline: { chunk_rows: 5000 },
    });
    expect(c.source.password).toBe('pw-cap');
    expect(JSON.stringify(c)).not.toContain('pw-cap');
    const msg = configError(doc({ ...pgSource, server_id: 7, slot: 'Bad-Slot', database: undefined }, []));
    expect(msg).toContain('source.server_id: unknown key');
    expect(msg).toContain('source.slot: a name of 1-63');
    expect(msg).toContain('source.database: required');
  });

  it('loads a PostgreSQL target by its own schema: defaults filled, password hidden, strict', () => {
    const pgTarget = { kind: 'postgres', name: 'pgdst', user: 'tidemark_apply', password: 'pw-pga', database: 'app' };
    const c = parseConfig(doc(toySourceSection, [pgTarget]), FILE);
    expect(c.targets[0]).toMatchObject({ kind: 'postgres', name: 'pgdst', host: '127.0.0.1', port: 5432 });
    expect(c.targets[0]?.password).toBe('pw-pga');
    expect(JSON.stringify(c)).not.toContain('pw-pga');
    // A MySQL target's key (PostgreSQL targets took `batch` too since issue #14's grouping) is unknown here.
    const msg = configError(doc(toySourceSection, [{ ...pgTarget, no_primary_key: 'refuse', database: undefined }]));
    expect(msg).toContain('targets.0.no_primary_key: unknown key');
    expect(msg).toContain('targets.0.database: required');
  });

  it('reports problems with the key paths of the file', () => {
    const msg = configError(doc({ ...toySourceSection, host: 'x' }, [toyTargetEntry('near', { file: undefined })]));
    expect(msg).toContain('source.host: unknown key');
    expect(msg).toContain('targets.0.file: required');
  });

  it('an unknown kind is a config error naming the key and the known kinds', () => {
    expect(configError(doc({ ...toySourceSection, kind: 'oracle' }, [mysqlTarget]))).toBe(
      `${FILE}: invalid config: source.kind: unknown engine "oracle" (known: mysql, postgres, toyk)`,
    );
    expect(configError(doc(toySourceSection, [toyTargetEntry('a'), { ...mysqlTarget, kind: 'oracle' }]))).toBe(
      `${FILE}: invalid config: targets.1.kind: unknown engine "oracle" (known: mysql, postgres, toyk)`,
    );
  });
});

describe('optional capabilities', () => {
  it('a target without takeover is refused when failover is configured; MySQL targets have both', () => {
    expect(() => requireCapability({ name: 'r', kind: 'mysql' }, 'takeover', 'failover')).not.toThrow();
    expect(() => requireCapability({ name: 'r' }, 'rewind', 'tidemark rewind')).not.toThrow();
    expect(() => requireCapability({ name: 'near', kind: 'toyk' }, 'rewind', 'tidemark rewind')).toThrow(
      'target near: its engine "toyk" has no rewind capability, which tidemark rewind needs',
    );
    expect(() => requireCapability({ name: 'near', kind: 'toyk' }, 'takeover', 'failover')).toThrow(ConfigError);
  });
});

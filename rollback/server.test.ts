import { describe, expect, it } from 'vitest';
import { withPassword } from '../core/secret.ts';
import { pickServer, type RewindConfig } from './server.ts';

function config(kind: 'mysql' | 'postgres', admin = true): RewindConfig {
  const source = {
    name: 'main',
    kind,
    host: '127.0.0.1',
    port: 5520,
    tls: undefined,
    connect_timeout_ms: 2000,
    database: 'appdb',
    ...(admin ? { admin: withPassword({ user: 'tidemark_apply' }, 'apply-pw') } : {}),
  };
  return { file: 't.yaml', source, journal: { dir: '/j' }, targets: [], standbys: [] };
}

describe('pickServer: the source itself', () => {
  it('refuses a PostgreSQL source to rewind and undo, naming failback as the one that may', () => {
    expect(() => pickServer(config('postgres'), 'main', true, 'tidemark rewind')).toThrow(
      /a postgres server: tidemark rewind of the source itself is done for MySQL\/MariaDB sources only \(and by tidemark failback for PostgreSQL\)/,
    );
  });

  it("lets failback rewind a PostgreSQL source through source.admin, with the source's database and name", () => {
    const s = pickServer(config('postgres'), 'main', true, 'tidemark rewind', true);
    expect(s).toMatchObject({ kind: 'source', engine: 'postgres', journalDir: '/j' });
    expect(s.endpoint).toMatchObject({ name: 'main', database: 'appdb', user: 'tidemark_apply', port: 5520 });
    expect((s.endpoint as { password?: string }).password).toBe('apply-pw');
    expect(Object.keys(s.endpoint)).not.toContain('password');
    expect(() => pickServer(config('postgres', false), 'main', true, 'tidemark rewind', true)).toThrow(
      /no source.admin account/,
    );
  });

  it('keeps a MySQL source as it was: --yes needed, no database or name in its endpoint', () => {
    expect(() => pickServer(config('mysql'), 'main', false, 'tidemark undo')).toThrow(/Add --yes/);
    const s = pickServer(config('mysql'), 'main', true, 'tidemark undo');
    expect(s).toMatchObject({ kind: 'source', engine: 'mysql' });
    expect(s.endpoint).not.toHaveProperty('database');
  });
});

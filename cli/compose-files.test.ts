/**
 * compose/docker-compose.yml is not run here (no Docker engine); these checks keep its files consistent with
 * each other and with the config schema.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../config/config.ts';

const COMPOSE = resolve(dirname(fileURLToPath(import.meta.url)), '../compose');
const read = (name: string) => readFileSync(resolve(COMPOSE, name), 'utf8');

interface Service {
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
}
const compose = parseYaml(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service> };
const services = compose.services;

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('compose/docker-compose.yml', () => {
  it.each(['primary', 'replica'])('%s runs MySQL with the binlog settings tidemark needs', (name) => {
    const cmd = services[name]?.command ?? [];
    for (const flag of [
      '--binlog-format=ROW',
      '--binlog-row-image=FULL',
      '--binlog-row-metadata=FULL',
      '--gtid-mode=ON',
      '--enforce-gtid-consistency=ON',
    ]) {
      expect(cmd).toContain(flag);
    }
    expect(services[name]).toMatchObject({ image: 'mysql:8.0' });
  });

  it('gives every server and tidemark a distinct server id', () => {
    const ids = ['primary', 'replica'].map((n) => services[n]?.command?.find((c) => c.startsWith('--server-id=')));
    expect(ids).toEqual(['--server-id=1', '--server-id=2']);
    vi.stubEnv('TIDEMARK_SOURCE_PASSWORD', 'x');
    vi.stubEnv('TIDEMARK_TARGET_PASSWORD', 'y');
    expect([1, 2]).not.toContain(
      parseConfig(read('tidemark.docker.yaml'), '/etc/tidemark/tidemark.yaml').source.server_id,
    );
  });

  it('mounts a config that parses and whose password variables the tidemark service sets', () => {
    const tm = services['tidemark'];
    expect(tm?.volumes).toContain('./tidemark.docker.yaml:/etc/tidemark/tidemark.yaml:ro');
    expect(tm?.command).toEqual(['run', '-c', '/etc/tidemark/tidemark.yaml']);
    expect(Object.keys(tm?.depends_on ?? {}).sort()).toEqual(['primary', 'replica']);
    for (const [k, v] of Object.entries(tm?.environment ?? {})) vi.stubEnv(k, v);
    const c = parseConfig(read('tidemark.docker.yaml'), '/etc/tidemark/tidemark.yaml');
    expect(c.source).toMatchObject({ host: 'primary', port: 3306, user: 'tidemark_cap' });
    expect(c.targets.map((t) => [t.name, t.host, t.user])).toEqual([['replica', 'replica', 'tidemark_apply']]);
    expect(c.journal.dir).toBe('/var/lib/tidemark/journal');
    expect(tm?.volumes?.some((v) => v.endsWith(':/var/lib/tidemark'))).toBe(true);
  });

  it('passes each MySQL server the password of the account it creates', () => {
    expect(services['primary']?.environment?.['TIDEMARK_SOURCE_PASSWORD']).toBe(
      services['tidemark']?.environment?.['TIDEMARK_SOURCE_PASSWORD'],
    );
    expect(services['replica']?.environment?.['TIDEMARK_TARGET_PASSWORD']).toBe(
      services['tidemark']?.environment?.['TIDEMARK_TARGET_PASSWORD'],
    );
  });
});

describe('compose/Dockerfile', () => {
  it('runs the config path the compose file mounts', () => {
    const dockerfile = read('Dockerfile');
    expect(dockerfile).toMatch(/^FROM node:24-slim/m);
    expect(dockerfile).toContain('CMD ["run", "-c", "/etc/tidemark/tidemark.yaml"]');
    expect(dockerfile).toContain('npm ci');
  });
});

describe('compose/mysql-init/10-tidemark-accounts.sh', () => {
  /** Sources the script as the MySQL entrypoint would, with `mysql` replaced by `cat`, and returns the SQL. */
  const sqlFor = (env: Record<string, string>) =>
    execFileSync(
      'bash',
      ['-c', 'mysql() { cat; }; . "$1"', 'init', resolve(COMPOSE, 'mysql-init/10-tidemark-accounts.sh')],
      {
        encoding: 'utf8',
        env: { PATH: process.env['PATH'], MYSQL_ROOT_PASSWORD: 'root', ...env },
      },
    );

  it('grants the capture account exactly SELECT, REPLICATION SLAVE, REPLICATION CLIENT on the primary', () => {
    const sql = sqlFor({ TIDEMARK_ROLE: 'primary', TIDEMARK_SOURCE_PASSWORD: "it's" });
    expect(sql).toContain("CREATE USER IF NOT EXISTS 'tidemark_cap'@'%'");
    expect(sql).toContain("BY 'it''s';");
    expect(sql).toContain("GRANT SELECT, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'tidemark_cap'@'%';");
    expect(sql).not.toContain('tidemark_apply');
  });

  it('creates only the apply account on the replica, without administrative privileges', () => {
    const sql = sqlFor({ TIDEMARK_ROLE: 'replica', TIDEMARK_TARGET_PASSWORD: 'apply-pw' });
    expect(sql).toContain("CREATE USER IF NOT EXISTS 'tidemark_apply'@'%'");
    expect(sql).not.toMatch(/ALL|SUPER|GRANT OPTION|tidemark_cap/);
  });

  it('fails without a role', () => {
    expect(() => sqlFor({})).toThrow();
  });
});

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../core/errors.ts';
import { connectionOptions, tlsOptions } from './session.ts';

const ep = { host: 'db1', port: 3306, user: 'u', connect_timeout_ms: 2500 };

describe('connectionOptions', () => {
  it('gives every connection the same value options and the endpoint timeout', () => {
    const o = connectionOptions(ep);
    expect(o).toMatchObject({
      host: 'db1',
      port: 3306,
      user: 'u',
      connectTimeout: 2500,
      supportBigNumbers: true,
      bigNumberStrings: true,
      decimalNumbers: false,
      dateStrings: true,
      timezone: 'Z',
      jsonStrings: true,
    });
    expect('password' in o).toBe(false);
    expect('ssl' in o).toBe(false);
    expect('flags' in o).toBe(false);
  });

  it('statement sessions, probes and streaming connections ask for their own flags', () => {
    expect(connectionOptions(ep, { foundRows: true, noLocalFiles: true }).flags).toEqual([
      'FOUND_ROWS',
      '-LOCAL_FILES',
    ]);
    expect(connectionOptions(ep, { keepAlive: true })).toMatchObject({ enableKeepAlive: true });
    expect(connectionOptions(ep, { connectTimeoutMs: 700 }).connectTimeout).toBe(700);
    expect(connectionOptions({ host: 'h', port: 1, user: 'u' }).connectTimeout).toBe(10_000);
  });
});

describe('tlsOptions', () => {
  it('reads the files once and keeps reject_unauthorized (default true)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-tls-'));
    writeFileSync(join(dir, 'ca.pem'), 'CA');
    expect(tlsOptions({ ...ep, tls: { ca_file: join(dir, 'ca.pem') } })).toEqual({
      ca: 'CA',
      rejectUnauthorized: true,
    });
    expect(tlsOptions({ ...ep, tls: { reject_unauthorized: false } })).toEqual({ rejectUnauthorized: false });
    expect(tlsOptions(ep)).toBeUndefined();
    rmSync(dir, { recursive: true });
  });

  it('a file that cannot be read is a CONFIG error naming the key', () => {
    const bad = { ...ep, tls: { cert_file: '/nonexistent/cert.pem' } };
    expect(() => tlsOptions(bad, 'source.tls')).toThrow(ConfigError);
    expect(() => tlsOptions(bad, 'source.tls')).toThrow(
      /^source\.tls\.cert_file: cannot read \/nonexistent\/cert\.pem \(ENOENT\)/,
    );
  });
});

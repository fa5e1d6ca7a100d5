/**
 * The statements the PostgreSQL fence and promote steps send, in order, against a scripted fake session
 * (postgres/session.ts's openPgClient replaced); the real servers are in test/it/pg-failover-executors.it.test.ts.
 */
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../core/log.ts';

interface Sent {
  readonly session: number;
  readonly sql: string;
  readonly values?: unknown[];
}
const sent: Sent[] = [];
let answer: (sql: string, values: unknown[] | undefined, session: number) => Record<string, unknown>[] = () => [];
let sessions = 0;

vi.mock('../postgres/session.ts', () => ({
  openPgClient: async () => {
    const session = ++sessions;
    return {
      query: async (sql: string, values?: unknown[]) => {
        sent.push({ session, sql, ...(values ? { values } : {}) });
        const rows = answer(sql, values, session);
        return { rows, rowCount: rows.length };
      },
      end: async () => undefined,
    };
  },
}));

const { backendsToEnd, fencePgServer } = await import('./pg-fence.ts');
const { createPublicationSql, promotePgServer } = await import('./pg-promote.ts');

const ep = { host: '10.0.0.1', port: 5432, user: 'tm_failover', database: 'shop' };
const opts = { killSessions: true, timeoutMs: 5000, log: silentLogger };
const statements = () => sent.map((s) => s.sql.replace(/statement_timeout = \d+/, 'statement_timeout = N'));

beforeEach(() => {
  sent.length = 0;
  sessions = 0;
});

describe('fencePgServer', () => {
  it('sets the default read-only, reloads, waits for a new session to read it, terminates, confirms', async () => {
    let listed = 0;
    answer = (sql, values) => {
      if (sql.startsWith('SHOW default_transaction_read_only')) return [{ default_transaction_read_only: 'on' }];
      if (sql.startsWith('SELECT clock_timestamp')) return [{ t: '2026-12-06 17:00:00+00' }];
      if (sql.startsWith('SELECT pg_backend_pid')) return [{ p: '100' }];
      if (sql.includes('FROM pg_stat_activity')) {
        expect(values?.[1]).toBe('2026-12-06 17:00:00+00');
        listed++;
        return listed === 1
          ? [
              { pid: '201', usename: 'app', app: 'shop', type: 'client backend', before: 't' },
              { pid: '202', usename: 'app', app: 'shop', type: 'client backend', before: 'f' },
            ]
          : [{ pid: '202', usename: 'app', app: 'shop', type: 'client backend', before: 'f' }];
      }
      return [{}];
    };
    const r = await fencePgServer(ep, opts);
    expect(r).toMatchObject({ confirmed: true, detail: expect.stringContaining('1 client backend(s) terminated') });
    expect(statements()).toEqual([
      'SET statement_timeout = N',
      'SET default_transaction_read_only = off',
      'ALTER SYSTEM SET default_transaction_read_only = on',
      'SELECT pg_reload_conf()',
      'SET statement_timeout = N',
      'SHOW default_transaction_read_only',
      'SELECT clock_timestamp()::text AS t',
      'SELECT pg_backend_pid() AS p',
      expect.stringContaining("backend_type = 'client backend'"),
      'SELECT pg_terminate_backend($1::int, 1000) AS ok',
      'SET statement_timeout = N',
      'SELECT pg_backend_pid() AS p',
      'SHOW default_transaction_read_only',
      expect.stringContaining('FROM pg_stat_activity'),
    ]);
    expect(sent.find((s) => s.sql.startsWith('SELECT pg_terminate'))?.values).toEqual([201]);
    // The SHOW that confirms runs in a session opened after the terminate pass (the third one).
    expect(sent.filter((s) => s.sql.startsWith('SHOW')).map((s) => s.session)).toEqual([2, 3]);
  });

  it('is not confirmed when a backend cannot be terminated (a superuser session), naming it', async () => {
    answer = (sql) => {
      if (sql.startsWith('SHOW')) return [{ default_transaction_read_only: 'on' }];
      if (sql.startsWith('SELECT clock_timestamp')) return [{ t: 'T' }];
      if (sql.startsWith('SELECT pg_backend_pid')) return [{ p: '1' }];
      if (sql.includes('FROM pg_stat_activity'))
        return [{ pid: '300', usename: 'postgres', app: 'psql', type: 'client backend', before: 't' }];
      if (sql.startsWith('SELECT pg_terminate')) {
        throw Object.assign(new Error('must be a superuser to terminate superuser process'), {
          severity: 'ERROR',
          code: '42501',
        });
      }
      return [{}];
    };
    const r = await fencePgServer(ep, opts);
    expect(r.confirmed).toBe(false);
    expect(r.detail).toMatch(/client backends are left: pid 300 \(postgres, psql\).*must be a superuser/);
  });

  it('names the failing step with its deadline when the server never reads on', async () => {
    answer = (sql) => (sql.startsWith('SHOW') ? [{ default_transaction_read_only: 'off' }] : [{}]);
    const r = await fencePgServer(ep, { ...opts, timeoutMs: 400 });
    expect(r.confirmed).toBe(false);
    expect(r.detail).toMatch(/waiting for new sessions to be read-only failed/);
  });

  it('counts a backend it cannot see (no pg_read_all_stats) as left', () => {
    const rows = [
      { pid: '1', user: null, app: null, type: null, before: false },
      { pid: '2', user: 'app', app: null, type: 'client backend', before: false },
      { pid: '3', user: 'app', app: null, type: 'client backend', before: true },
    ];
    expect(backendsToEnd(rows).map((r) => r.pid)).toEqual(['1', '3']);
  });
});

describe('promotePgServer', () => {
  it('checks wal_level, creates the publication, then the slot, then opens the server', async () => {
    answer = (sql, _v, session) => {
      if (sql === 'SHOW wal_level') return [{ wal_level: 'logical' }];
      if (sql.startsWith('SHOW default_transaction_read_only'))
        return [{ default_transaction_read_only: session === 1 ? 'on' : 'off' }];
      if (sql.startsWith('SELECT clock_timestamp')) return [{ t: 'T' }];
      if (sql.includes('FROM pg_publication')) return [];
      if (sql.includes('FROM pg_sequence')) return [];
      if (sql.includes('FROM pg_class'))
        return [
          { s: 'shop', t: 'orders' },
          { s: 'shop', t: 'Line "items"' },
        ];
      if (sql.includes('FROM pg_replication_slots')) return [{ active: 'f' }];
      if (sql.includes('pg_create_logical_replication_slot')) return [{ lsn: '0/3000A28' }];
      return [{}];
    };
    const r = await promotePgServer(ep, {
      slot: 'tidemark',
      publication: 'tidemark',
      timeoutMs: 5000,
      log: silentLogger,
    });
    expect(r.position).toEqual({ engine: 'postgres', lsn: 0x3000a28n, slot: 'tidemark', publication: 'tidemark' });
    expect(r.detail).toMatch(
      /was on\), promotion position 0\/3000A28.*created for 2 table\(s\), leftover slot tidemark dropped/,
    );
    expect(statements()).toEqual([
      'SET statement_timeout = N',
      'SHOW default_transaction_read_only',
      'SET default_transaction_read_only = off',
      'SHOW wal_level',
      expect.stringContaining('FROM pg_sequence q'),
      'SELECT 1 FROM pg_publication WHERE pubname = $1',
      expect.stringContaining('FROM pg_class'),
      'CREATE PUBLICATION "tidemark" FOR TABLE "shop"."orders", "shop"."Line ""items"""',
      'SELECT active FROM pg_replication_slots WHERE slot_name = $1',
      'SELECT pg_drop_replication_slot($1)',
      "SELECT lsn::text AS lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')",
      'ALTER SYSTEM RESET default_transaction_read_only',
      'SELECT pg_reload_conf()',
      'SET statement_timeout = N',
      'SHOW default_transaction_read_only',
      'SELECT clock_timestamp()::text AS t',
    ]);
  });

  it('refuses a server without wal_level=logical before changing anything', async () => {
    answer = (sql) => (sql === 'SHOW wal_level' ? [{ wal_level: 'replica' }] : [{}]);
    await expect(
      promotePgServer(ep, { slot: 's', publication: 'p', timeoutMs: 5000, log: silentLogger }),
    ).rejects.toMatchObject({ code: 'PROMOTE_NOT_CAPTURABLE' });
    expect(statements().some((s) => /ALTER|CREATE|pg_create/.test(s))).toBe(false);
  });

  it('refuses a slot of that name in use', async () => {
    answer = (sql) => {
      if (sql === 'SHOW wal_level') return [{ wal_level: 'logical' }];
      if (sql.includes('FROM pg_publication')) return [{ '?column?': 1 }];
      if (sql.includes('FROM pg_sequence')) return [];
      if (sql.includes('FROM pg_replication_slots')) return [{ active: 't' }];
      return [{ default_transaction_read_only: 'on' }];
    };
    await expect(
      promotePgServer(ep, { slot: 's', publication: 'p', timeoutMs: 5000, log: silentLogger }),
    ).rejects.toMatchObject({ code: 'PROMOTE_FAILED', message: expect.stringMatching(/slot s is in use/) });
    expect(statements().some((s) => s.startsWith('ALTER SYSTEM'))).toBe(false);
  });

  it('writes an empty publication when the database has no table yet', () => {
    expect(createPublicationSql('p', [])).toBe('CREATE PUBLICATION "p"');
  });
});

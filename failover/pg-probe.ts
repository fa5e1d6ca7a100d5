/**
 * The monitor's heartbeat probe for a PostgreSQL primary (the counterpart of probes.ts HeartbeatProbe, same
 * interface): one kept session through the failover account; each probe reads whether the server takes writes by
 * default (a fenced or recovering primary counts as failed: "the primary is read-only (fenced?)") and upserts this
 * site's row in the heartbeat table (`failover.monitor.heartbeat.table`, created when missing), so a primary that
 * answers but cannot commit fails too. Bounded by `timeoutMs`; a failed or timed-out probe drops the session.
 * Leave the heartbeat table out of the source publication (it is the monitor's, not the application's).
 */
import type pg from 'pg';
import { describeChain } from '../core/errors.ts';
import { wrapPgError } from '../postgres/errors.ts';
import { openPgClient, type PgEndpoint } from '../postgres/session.ts';
import { quoteIdent } from '../postgres/sql.ts';
import { bounded, type HeartbeatOptions, type ProbeResult, READ_ONLY_MESSAGE, splitTable } from './probes.ts';

export const PG_PROBE_SQL = {
  state:
    "SELECT current_setting('default_transaction_read_only') AS ro, pg_is_in_recovery()::text AS rec, " +
    '(extract(epoch FROM clock_timestamp()) * 1000000)::bigint::text AS t',
  exists: 'SELECT (to_regclass($1) IS NOT NULL)::text AS present',
  create: (q: string, schema: string) => [
    `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`,
    `CREATE TABLE IF NOT EXISTS ${q} (writer text PRIMARY KEY, ts timestamptz NOT NULL, seq bigint NOT NULL)`,
  ],
  upsert: (q: string) =>
    `INSERT INTO ${q} (writer, ts, seq) VALUES ($1, clock_timestamp(), 1) ` +
    `ON CONFLICT (writer) DO UPDATE SET ts = EXCLUDED.ts, seq = ${q}.seq + 1`,
} as const;

class ReadOnly extends Error {}

export class PgHeartbeatProbe {
  readonly #ep: PgEndpoint;
  readonly #opts: HeartbeatOptions;
  readonly #q: string;
  readonly #schema: string;
  readonly #where: string;
  #client: pg.Client | null = null;
  #ready = false;
  #gen = 0;

  constructor(ep: PgEndpoint, opts: HeartbeatOptions) {
    const { schema, table } = splitTable(opts.table);
    this.#ep = ep;
    this.#opts = opts;
    this.#schema = schema;
    this.#q = `${quoteIdent(schema)}.${quoteIdent(table)}`;
    this.#where = `${ep.host}:${ep.port}`;
  }

  async probe(signal?: AbortSignal): Promise<ProbeResult> {
    const t0 = performance.now();
    const gen = ++this.#gen;
    const work = this.#write().then(
      (primaryTimeUs): ProbeResult => ({ ok: true, latencyMs: performance.now() - t0, primaryTimeUs }),
      (err: unknown): ProbeResult => {
        if (gen === this.#gen) this.close();
        const msg = err instanceof ReadOnly ? READ_ONLY_MESSAGE : describeChain(wrapPgError(err, 'heartbeat'));
        return { ok: false, error: `${this.#where}: ${msg}` };
      },
    );
    return bounded(work, this.#opts.timeoutMs, signal, (why) => {
      this.close();
      return {
        ok: false,
        error:
          why === 'timeout'
            ? `${this.#where}: no answer within ${this.#opts.timeoutMs} ms`
            : `${this.#where}: probe stopped`,
      };
    });
  }

  close(): void {
    const c = this.#client;
    this.#client = null;
    c?.end().catch(() => undefined);
  }

  async #write(): Promise<number> {
    if (!this.#client) {
      const bounded = { ...this.#ep, connect_timeout_ms: this.#opts.timeoutMs + 1000 };
      this.#client = await openPgClient(
        Object.defineProperty(bounded, 'password', { value: this.#ep.password, enumerable: false }),
        {
          applicationName: 'tidemark-monitor',
        },
      );
    }
    const c = this.#client;
    const r = (await c.query(PG_PROBE_SQL.state)).rows[0] as Record<string, string> | undefined;
    if (r?.['ro'] !== 'off' || r?.['rec'] !== 'false') throw new ReadOnly();
    if (!this.#ready) {
      // Looked up first: an account without CREATE works once the table exists.
      const found = (await c.query(PG_PROBE_SQL.exists, [this.#q])).rows[0] as Record<string, string> | undefined;
      if (found?.['present'] !== 'true')
        for (const sql of PG_PROBE_SQL.create(this.#q, this.#schema)) await c.query(sql);
      this.#ready = true;
    }
    await c.query(PG_PROBE_SQL.upsert(this.#q), [this.#opts.writer]);
    return Number(r['t']);
  }
}

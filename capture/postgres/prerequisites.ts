/**
 * Start-up check of a PostgreSQL source for logical-decoding capture. Every failed check is one line naming the
 * setting and exactly what to change; all lines go into one PgPrerequisiteError (code PREREQUISITE, not
 * retriable), so an operator fixes everything in one round. `evaluatePgPrerequisites` is the pure decision over
 * the facts; `readPgFactRows` reads the catalog rows (I/O) and `factsFromRows` turns them into facts (pure).
 *
 * Checked:
 *   wal_level = logical                        (restart needed)
 *   max_replication_slots                      a free slot, unless tidemark's slot already exists
 *   max_wal_senders                            a free sender (walsenders running now counted)
 *   the role                                   REPLICATION (or superuser)
 *   every captured table's REPLICA IDENTITY    FULL, so updates and deletes carry the whole before image (rewind,
 *                                              guarded apply and verify need it). A table listed in the opt-out is
 *                                              accepted with DEFAULT (a primary key) or USING INDEX: it is captured
 *                                              without before images and rewind is disabled for it. NOTHING, or
 *                                              DEFAULT without a primary key, is refused even when opted out: the
 *                                              source itself would refuse UPDATE/DELETE on a table in a publication.
 */
import type pg from 'pg';
import { TidemarkError } from '../../core/errors.ts';
import { qualifiedName, quoteIdent } from '../../postgres/sql.ts';
import type { ReplicaIdentity } from './pgoutput-messages.ts';

export class PgPrerequisiteError extends TidemarkError {
  readonly failures: readonly string[];
  constructor(failures: readonly string[], context: { host: string; port: number }) {
    super(`the PostgreSQL source is not ready for capture:\n  - ${failures.join('\n  - ')}`, {
      code: 'PREREQUISITE',
      retriable: false,
      context: { ...context, failures: failures.length },
    });
    this.name = 'PgPrerequisiteError';
    this.failures = failures;
  }
}

export interface PgTableFacts {
  readonly schema: string;
  readonly table: string;
  /** pg_class.relreplident */
  readonly replicaIdentity: ReplicaIdentity;
  readonly hasPrimaryKey: boolean;
}

/** What the server told us (readPgFacts). Settings are pg_settings.setting text. */
export interface PgFacts {
  readonly settings: ReadonlyMap<string, string>;
  /** Replication slots that exist now. */
  readonly slotsUsed: number;
  /** Whether tidemark's own slot is among them (it then needs no new one). */
  readonly ownSlotExists: boolean;
  /** walsender processes running now. */
  readonly sendersUsed: number;
  readonly role: { readonly name: string; readonly replication: boolean; readonly superuser: boolean };
  readonly tables: readonly PgTableFacts[];
  /** Captured tables ("schema.table") the catalog does not show. */
  readonly missingTables: readonly string[];
}

export interface PgPrerequisiteOptions {
  /** "schema.table" names captured without REPLICA IDENTITY FULL (no before images, no rewind for them). */
  readonly identityFullOptOut?: readonly string[];
}

const IDENTITY_NAMES: Readonly<Record<ReplicaIdentity, string>> = {
  d: 'DEFAULT',
  n: 'NOTHING',
  f: 'FULL',
  i: 'USING INDEX',
};

/** The failed checks, one line each (empty: ready). Pure. */
export function evaluatePgPrerequisites(f: PgFacts, o: PgPrerequisiteOptions = {}): string[] {
  const out: string[] = [];
  const setting = (name: string) => f.settings.get(name);
  const int = (name: string) => Number.parseInt(setting(name) ?? '', 10);

  const wal = setting('wal_level');
  if (wal !== 'logical') {
    out.push(
      `wal_level is '${wal ?? 'unknown'}', must be 'logical': ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL`,
    );
  }
  const slots = int('max_replication_slots');
  if (!f.ownSlotExists && !(slots > f.slotsUsed)) {
    out.push(
      `max_replication_slots is ${setting('max_replication_slots') ?? 'unknown'} and ${f.slotsUsed} slot(s) exist: ` +
        'tidemark needs one more; raise it (ALTER SYSTEM SET max_replication_slots = …; restart) or drop an unused slot',
    );
  }
  const senders = int('max_wal_senders');
  if (!(senders > f.sendersUsed)) {
    out.push(
      `max_wal_senders is ${setting('max_wal_senders') ?? 'unknown'} and ${f.sendersUsed} WAL sender(s) run: ` +
        'tidemark needs one more; raise it (ALTER SYSTEM SET max_wal_senders = …; restart)',
    );
  }
  if (!f.role.replication && !f.role.superuser) {
    out.push(`role ${quoteIdent(f.role.name)} lacks REPLICATION: ALTER ROLE ${quoteIdent(f.role.name)} REPLICATION`);
  }
  for (const m of f.missingTables) {
    out.push(`table ${m} does not exist (or the role cannot see it): create it or remove it from the captured tables`);
  }
  const optOut = new Set(o.identityFullOptOut ?? []);
  for (const t of f.tables) {
    const name = `${t.schema}.${t.table}`;
    const sql = qualifiedName(t.schema, t.table);
    if (t.replicaIdentity === 'f') continue;
    const keyless = t.replicaIdentity === 'n' || (t.replicaIdentity === 'd' && !t.hasPrimaryKey);
    if (keyless) {
      out.push(
        `table ${name} has REPLICA IDENTITY ${IDENTITY_NAMES[t.replicaIdentity]}${t.hasPrimaryKey ? '' : ' and no primary key'}: ` +
          `updates and deletes cannot be captured; ALTER TABLE ${sql} REPLICA IDENTITY FULL`,
      );
    } else if (!optOut.has(name)) {
      out.push(
        `table ${name} has REPLICA IDENTITY ${IDENTITY_NAMES[t.replicaIdentity]}: tidemark needs FULL for before images ` +
          `(rewind, guarded apply): ALTER TABLE ${sql} REPLICA IDENTITY FULL; or list "${name}" in ` +
          'identity_full_opt_out to capture it without before images (rewind is then disabled for that table)',
      );
    }
  }
  return out;
}

/** The catalog rows readPgFacts reads, as `pg` returns them with tidemark's text session (values as text). */
export interface PgFactRows {
  readonly settings: readonly { name: string; setting: string }[];
  readonly slots: readonly { n: string | number; own: string | number }[];
  readonly senders: readonly { n: string | number }[];
  readonly role: readonly { rolname: string; rolreplication: unknown; rolsuper: unknown }[];
  readonly tables: readonly { schema: string; table: string; ident: string; pk: unknown }[];
}

export interface TableName {
  readonly schema: string;
  readonly table: string;
}

const bool = (v: unknown) => v === true || v === 't' || v === 'true';

/** Turns the catalog rows into facts. Pure. */
export function factsFromRows(rows: PgFactRows, wanted: readonly TableName[]): PgFacts {
  const found: PgTableFacts[] = rows.tables.map((t) => ({
    schema: t.schema,
    table: t.table,
    replicaIdentity: t.ident as ReplicaIdentity,
    hasPrimaryKey: bool(t.pk),
  }));
  const r = rows.role[0];
  return {
    settings: new Map(rows.settings.map((x) => [x.name, x.setting])),
    slotsUsed: Number(rows.slots[0]?.n ?? 0),
    ownSlotExists: Number(rows.slots[0]?.own ?? 0) > 0,
    sendersUsed: Number(rows.senders[0]?.n ?? 0),
    role: { name: r?.rolname ?? '', replication: bool(r?.rolreplication), superuser: bool(r?.rolsuper) },
    tables: found,
    missingTables: wanted
      .filter((w) => !found.some((t) => t.schema === w.schema && t.table === w.table))
      .map((w) => `${w.schema}.${w.table}`),
  };
}

/** Reads the catalog rows for `tables` as the connected role (catalog reads only). */
export async function readPgFactRows(
  client: pg.Client,
  o: { readonly slot: string; readonly tables: readonly TableName[] },
): Promise<PgFactRows> {
  const q = async <R>(sql: string, params: unknown[] = []): Promise<R[]> =>
    (await client.query(sql, params)).rows as R[];
  return {
    settings: await q(
      "SELECT name, setting FROM pg_settings WHERE name IN ('wal_level', 'max_replication_slots', 'max_wal_senders')",
    ),
    slots: await q('SELECT count(*) AS n, count(*) FILTER (WHERE slot_name = $1) AS own FROM pg_replication_slots', [
      o.slot,
    ]),
    senders: await q("SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'walsender'"),
    role: await q('SELECT rolname, rolreplication, rolsuper FROM pg_roles WHERE rolname = current_user'),
    tables: await q(
      `SELECT n.nspname AS schema, c.relname AS "table", c.relreplident::text AS ident,
              EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS pk
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
      [o.tables.map((t) => t.schema), o.tables.map((t) => t.table)],
    ),
  };
}

export async function readPgFacts(
  client: pg.Client,
  o: { readonly slot: string; readonly tables: readonly TableName[] },
): Promise<PgFacts> {
  return factsFromRows(await readPgFactRows(client, o), o.tables);
}

/** Throws PgPrerequisiteError listing every failed check; resolves when the source is ready. */
export function assertPgPrerequisites(
  f: PgFacts,
  o: PgPrerequisiteOptions & { readonly host: string; readonly port: number },
): void {
  const failures = evaluatePgPrerequisites(f, o);
  if (failures.length > 0) throw new PgPrerequisiteError(failures, { host: o.host, port: o.port });
}

/**
 * The baseline of a PostgreSQL source (I/O): the slot is created on a replication connection with an exported
 * snapshot (`CREATE_REPLICATION_SLOT … LOGICAL pgoutput (SNAPSHOT 'export')`, PostgreSQL 15 syntax); that
 * connection stays open, untouched, while one reader copies every captured table in `BEGIN ISOLATION LEVEL
 * REPEATABLE READ` + `SET TRANSACTION SNAPSHOT`, so the copy is exactly the database at the slot's consistent
 * point and streaming from that point neither misses nor repeats a transaction. Each table is read through a
 * cursor ordered by its primary key, `chunk_rows` rows at a time (bounded memory); each chunk becomes one unit
 * (rows entry + commit of phase 'baseline' at the consistent point) through `emit`. Plain SELECTs: no lock
 * stronger than ACCESS SHARE; writes continue.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { TidemarkError } from '../../core/errors.ts';
import { wrapPgError } from '../../postgres/errors.ts';
import { parseLsn } from '../../postgres/lsn.ts';
import { openPgClient, type PgEndpoint } from '../../postgres/session.ts';
import { qualifiedName, quoteIdent, quoteLiteral } from '../../postgres/sql.ts';
import type { RowImage } from '../../record/record.ts';
import { type PgTableRef, type TableShape, tableShape } from './relations.ts';
import { cellValue } from './rows.ts';

/** Where the baseline's units go (capture.ts numbers and journals them). */
export interface BaselineEmit {
  rows(shape: TableShape, rows: readonly RowImage[], txId: string): Promise<void>;
  /** Closes a unit at the consistent point `lsn`. */
  commit(txId: string, lsn: bigint, rowCount: bigint): Promise<void>;
}

export interface BaselineOptions {
  readonly endpoint: PgEndpoint;
  readonly slot: string;
  readonly tables: readonly PgTableRef[];
  readonly chunkRows: number;
  readonly log: Logger;
  readonly emit: BaselineEmit;
  readonly signal: AbortSignal;
}

/** The slot created with its exported snapshot. */
export interface ExportedSlot {
  readonly consistentPoint: bigint;
  readonly snapshot: string;
}

/** CREATE_REPLICATION_SLOT with an exported snapshot on `repl` (a replication connection). */
export async function createSlotWithSnapshot(repl: pg.Client, slot: string): Promise<ExportedSlot> {
  if (!/^[a-z0-9_]{1,63}$/.test(slot)) {
    throw new TidemarkError(`replication slot name "${slot}" must be 1-63 of a-z, 0-9 and _`, { code: 'CONFIG' });
  }
  try {
    const r = await repl.query(`CREATE_REPLICATION_SLOT ${slot} LOGICAL pgoutput (SNAPSHOT 'export')`);
    const row = r.rows[0] as { consistent_point: string; snapshot_name: string };
    return { consistentPoint: parseLsn(row.consistent_point), snapshot: row.snapshot_name };
  } catch (err) {
    throw wrapPgError(err, `create replication slot ${slot}`, { slot });
  }
}

async function copyTable(reader: pg.Client, t: PgTableRef, at: bigint, o: BaselineOptions): Promise<number> {
  const shape = await tableShape(reader, t);
  const cols = shape.columns.map((c) => quoteIdent(c.name)).join(', ');
  const order = shape.pk.length > 0 ? ` ORDER BY ${shape.pk.map(quoteIdent).join(', ')}` : '';
  const name = qualifiedName(t.schema, t.table);
  await reader.query(`DECLARE tidemark_copy NO SCROLL CURSOR FOR SELECT ${cols} FROM ${name}${order}`);
  let n = 0;
  for (let chunk = 0; !o.signal.aborted; chunk++) {
    const r = await reader.query<unknown[]>({ text: `FETCH ${o.chunkRows} FROM tidemark_copy`, rowMode: 'array' });
    if (r.rows.length === 0) break;
    const rows: RowImage[] = r.rows.map((row) => ({
      before: null,
      after: row.map((v, i) => cellValue(v as string | null, shape.bytea[i] === true, `${name} baseline`)),
    }));
    const txId = `baseline:${t.schema}.${t.table}:${chunk}`;
    await o.emit.rows(shape, rows, txId);
    await o.emit.commit(txId, at, BigInt(rows.length));
    n += rows.length;
  }
  await reader.query('CLOSE tidemark_copy');
  return n;
}

/**
 * Creates the slot and copies every table at its consistent point; returns that point (streaming starts there),
 * or null when `signal` aborted first (the journal then holds an unfinished baseline: the next start redoes it).
 */
export async function takeBaseline(o: BaselineOptions): Promise<bigint | null> {
  const where = { host: o.endpoint.host, port: o.endpoint.port, slot: o.slot };
  const repl = await openPgClient(o.endpoint, { replication: 'database', applicationName: 'tidemark-baseline' });
  let reader: pg.Client | undefined;
  try {
    const { consistentPoint, snapshot } = await createSlotWithSnapshot(repl, o.slot);
    o.log.info({ slot: o.slot, consistentPoint: consistentPoint.toString(), tables: o.tables.length }, 'baseline');
    reader = await openPgClient(o.endpoint, { applicationName: 'tidemark-baseline' });
    try {
      await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      await reader.query(`SET TRANSACTION SNAPSHOT ${quoteLiteral(snapshot)}`);
      for (const t of o.tables) {
        const n = await copyTable(reader, t, consistentPoint, o);
        if (o.signal.aborted) break;
        o.log.info({ schema: t.schema, table: t.table, rows: n }, 'baseline table copied');
      }
      await reader.query('COMMIT');
    } catch (err) {
      throw err instanceof TidemarkError ? err : wrapPgError(err, 'baseline copy', where);
    }
    return o.signal.aborted ? null : consistentPoint;
  } finally {
    await reader?.end().catch(() => {});
    await repl.end().catch(() => {});
  }
}

/**
 * Opens the logical replication stream of a slot with the `pg` driver: a `replication: 'database'` connection
 * (postgres/session.ts: the same text settings as every session, so pgoutput's value text matches a SELECT's),
 * START_REPLICATION SLOT … LOGICAL <startLsn> (proto_version '1', publication_names, messages 'true'), and the
 * CopyBoth connection wrapped as a ReplicationTransport for WalStream (walstream.ts). I/O only.
 *
 * `startLsn` must be the consumer's own durable position (the journal's last commit end), never the server's
 * current one: resuming from the server's position loses what it sent but we did not keep (pgcapture#56). The
 * server starts from max(startLsn, the slot's confirmed_flush_lsn) and replays every transaction committing
 * after it.
 */
import type pg from 'pg';
import { ConfigError, type ErrorContext, TidemarkError } from '../../core/errors.ts';
import { sqlStateOf, wrapPgError } from '../../postgres/errors.ts';
import { formatLsn } from '../../postgres/lsn.ts';
import { openPgClient, type PgEndpoint } from '../../postgres/session.ts';
import { quoteIdent, quoteLiteral } from '../../postgres/sql.ts';
import { type ReplicationTransport, WalStream, type WalStreamOptions } from './walstream.ts';

export interface ReplicationOptions extends Omit<WalStreamOptions, 'startLsn'> {
  /** The logical slot (pgoutput); slot names are 1-63 of a-z, 0-9, _. */
  readonly slot: string;
  readonly publications: readonly string[];
  readonly startLsn: bigint;
  readonly applicationName?: string;
}

/** The START_REPLICATION command (names checked or quoted; the publication list is one quoted literal). */
export function startReplicationSql(o: Pick<ReplicationOptions, 'slot' | 'publications' | 'startLsn'>): string {
  if (!/^[a-z0-9_]{1,63}$/.test(o.slot)) {
    throw new ConfigError(`replication slot name "${o.slot}" must be 1-63 of a-z, 0-9 and _`, { slot: o.slot });
  }
  if (o.publications.length === 0) throw new ConfigError('at least one publication is needed', {});
  const pubs = quoteLiteral(o.publications.map(quoteIdent).join(','));
  return (
    `START_REPLICATION SLOT ${o.slot} LOGICAL ${formatLsn(o.startLsn)} ` +
    `(proto_version '1', publication_names ${pubs}, messages 'true')`
  );
}

/**
 * The error a replication stream ends with, typed: a slot whose WAL was removed (max_slot_wal_keep_size) is
 * PG_SLOT_LOST — never retried, never skipped silently: the changes in between are gone; anything else as
 * postgres/errors.ts classifies it (a terminated walsender or a dropped connection: PG_CONNECT, retriable).
 */
export function replicationError(err: unknown, slot: string, context: ErrorContext): TidemarkError {
  const msg = String((err as { message?: unknown } | null)?.message ?? '');
  const detail = String((err as { detail?: unknown } | null)?.detail ?? '');
  if (sqlStateOf(err) === '55000' && /can no longer get changes|invalidated/.test(`${msg} ${detail}`)) {
    return new TidemarkError(
      `replication slot ${slot} was invalidated: the server removed WAL it still needed (max_slot_wal_keep_size), ` +
        'so changes are lost; re-baseline the targets and create the slot again',
      { code: 'PG_SLOT_LOST', retriable: false, cause: err, context: { ...context, detail } },
    );
  }
  if (sqlStateOf(err) === '55006') {
    // object_in_use: another walsender holds the slot — typically the previous capture's, still ending (a dropped
    // client is noticed at wal_sender_timeout at the latest). Retried; a second consumer of the slot keeps failing.
    return new TidemarkError(
      `replication slot ${slot} is in use by another process (${msg}); retrying — if another tidemark or ` +
        'subscriber uses this slot, give this source its own `slot`',
      { code: 'PG_TRANSIENT', retriable: true, cause: err, context },
    );
  }
  return wrapPgError(err, `replication from slot ${slot}`, context);
}

/** The internals of `pg` a CopyBoth stream needs (stable since pg 8: pg-logical-replication uses the same). */
interface PgConnectionInternals {
  stream: NodeJS.ReadableStream & { pause(): void; resume(): void };
  on(event: 'copyData', h: (msg: { chunk: Buffer }) => void): void;
  once(event: 'replicationStart', h: () => void): void;
  sendCopyFromChunk(chunk: Uint8Array): void;
}

class PgTransport implements ReplicationTransport {
  private readonly client: pg.Client;
  private readonly con: PgConnectionInternals;
  private endHandler: ((err?: unknown) => void) | undefined;
  private ended: { err?: unknown } | undefined;

  private readonly wrap: (err: unknown) => TidemarkError;
  private closing = false;

  constructor(client: pg.Client, wrap: (err: unknown) => TidemarkError) {
    this.client = client;
    this.wrap = wrap;
    this.con = (client as unknown as { connection: PgConnectionInternals }).connection;
    client.on('end', () => this.end());
    client.on('error', (err) => this.end(err));
    // Subscribed before START_REPLICATION: the first CopyData can arrive in the same TCP chunk as CopyBoth,
    // parsed synchronously before WalStream exists; it is held until WalStream registers.
    // Copied: pg-protocol's CopyData chunk is a view into its parser buffer, which it compacts in place when the
    // next TCP chunk arrives (parser.js mergeBuffer reuses `this.buffer`), so a message WalStream still queues would
    // be overwritten (seen as a 128 KB Update decoding with trailing bytes from the next message).
    this.con.on('copyData', (msg) => {
      const chunk = Uint8Array.prototype.slice.call(msg.chunk);
      if (this.dataHandler) this.dataHandler(chunk);
      else this.early.push(chunk);
    });
  }

  private dataHandler: ((chunk: Uint8Array) => void) | undefined;
  private early: Uint8Array[] = [];

  /** The stream ended: an error typed by `wrap`; a clean end we did not ask for is a retriable PG_CONNECT. */
  end(err?: unknown): void {
    if (this.ended) return;
    let e: unknown;
    if (this.closing)
      e = undefined; // our own close: whatever the socket says now is not a failure
    else if (err !== undefined) e = this.wrap(err);
    else {
      e = new TidemarkError('the server ended the replication stream', { code: 'PG_CONNECT', retriable: true });
    }
    this.ended = e === undefined ? {} : { err: e };
    this.endHandler?.(e);
  }

  onCopyData(handler: (chunk: Uint8Array) => void): void {
    this.dataHandler = handler;
    for (const c of this.early.splice(0)) handler(c);
  }
  onEnd(handler: (err?: unknown) => void): void {
    this.endHandler = handler;
    if (this.ended) handler(this.ended.err);
  }
  sendCopyData(chunk: Uint8Array): void {
    this.con.sendCopyFromChunk(chunk);
  }
  pause(): void {
    this.con.stream.pause();
  }
  resume(): void {
    this.con.stream.resume();
  }
  async close(): Promise<void> {
    this.closing = true;
    await this.client.end().catch(() => {});
  }
}

/**
 * Connects, starts streaming and resolves once the server answered CopyBoth (a missing slot or publication, a
 * slot in use or a privilege error rejects here, as a PG_* TidemarkError).
 */
export async function startReplication(ep: PgEndpoint, o: ReplicationOptions): Promise<WalStream> {
  const sql = startReplicationSql(o);
  const client = await openPgClient(ep, {
    replication: 'database',
    applicationName: o.applicationName ?? 'tidemark-capture',
  });
  const where = { host: ep.host, port: ep.port, slot: o.slot };
  const transport = new PgTransport(client, (err) => replicationError(err, o.slot, where));
  try {
    await new Promise<void>((resolve, reject) => {
      const con = (client as unknown as { connection: PgConnectionInternals }).connection;
      con.once('replicationStart', () => resolve());
      // Ended before CopyBoth (the connection dropped): a refusal to start. WalStream replaces this handler.
      transport.onEnd((e) =>
        reject(
          e ?? new TidemarkError('replication stream ended before it started', { code: 'PG_CONNECT', retriable: true }),
        ),
      );
      // The query settles only when the stream ends: an error before CopyBoth is a refusal to start.
      client.query(sql).then(
        () => transport.end(),
        (err: unknown) => transport.end(err),
      );
    });
  } catch (err) {
    await client.end().catch(() => {});
    throw err instanceof TidemarkError ? err : wrapPgError(err, `START_REPLICATION on slot ${o.slot}`, where);
  }
  return new WalStream(transport, o);
}

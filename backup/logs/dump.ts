/**
 * The replication connection of the archiver (I/O): a mysql2 connection that registers nothing, sets the session
 * variables a MariaDB replica sets, sends COM_BINLOG_DUMP for (file, position) with its own server_id and hands
 * out each event's RAW bytes — the bytes of the server's binlog file, which mysql2's own BinlogDump command
 * parses and drops (it keeps a few fields of four event types). The command object below speaks mysql2's
 * command protocol (`execute(packet, connection)`, `onResult(err)` for fatal errors), which is public enough
 * that mysql2's own commands and zongji use it; nothing of mysql2's internals is imported.
 *
 * Session, before the dump:
 *   @master_binlog_checksum = @@global.binlog_checksum  the server sends the events with their checksums as the
 *                                                       file has them (else it strips them)
 *   @mariadb_slave_capability = 4                       MariaDB sends its real events (annotate rows, GTID,
 *                                                       binlog checkpoint, GTID list), not placeholders
 *   @master_heartbeat_period                           a heartbeat event when idle: a dead link is noticed
 * Errors: errno 1236 (the file asked for is purged, or the position is past its end) is BACKUP_LOG_GAP (never
 * retried: the archive cannot continue); connection failures are retriable BACKUP_LOG_CONNECT.
 */
import mysql from 'mysql2';
import mysqlPromise from 'mysql2/promise';
import { TidemarkError } from '../../core/errors.ts';
import { connectionOptions, type MysqlEndpoint } from '../../mysql/session.ts';
import {
  ER_MASTER_FATAL_ERROR_READING_BINLOG,
  errorText,
  isRetriableDbError,
  serverFields,
} from '../../mysql/errors.ts';
import { gapError } from './follower.ts';

const COM_BINLOG_DUMP = 0x12;
/** Dump flag: send the Annotate_rows events (MariaDB leaves them out otherwise, and the archive would have holes). */
const BINLOG_SEND_ANNOTATE_ROWS_EVENT = 0x02;

export interface DumpOptions {
  readonly file: string;
  readonly pos: bigint;
  readonly serverId: number;
  readonly heartbeatSeconds: number;
}

/** The bits of a mysql2 packet this module reads. */
interface InPacket {
  readonly buffer: Buffer;
  readonly offset: number;
  readonly end: number;
  isEOF(): boolean;
  isError(): boolean;
  asError(encoding?: string): Error;
}

interface RawConnection {
  readonly clientEncoding: string;
  writePacket(p: { buffer: Buffer; length(): number; writeHeader(seq: number): void }): void;
  _resetSequenceId(): void;
  addCommand(cmd: unknown): unknown;
  pause(): void;
  resume(): void;
}

/** COM_BINLOG_DUMP: command · position u32 · flags u16 (annotate rows; blocking) · server_id u32 · file name. */
export function dumpPacket(o: Pick<DumpOptions, 'file' | 'pos' | 'serverId'>): Buffer {
  if (o.pos > 0xffffffffn) throw new RangeError(`binlog position ${o.pos} does not fit COM_BINLOG_DUMP's 32 bits`);
  const name = Buffer.from(o.file, 'latin1');
  const b = Buffer.alloc(4 + 11 + name.length);
  b.writeUInt8(COM_BINLOG_DUMP, 4);
  b.writeUInt32LE(Number(o.pos), 5);
  b.writeUInt16LE(BINLOG_SEND_ANNOTATE_ROWS_EVENT, 9);
  b.writeUInt32LE(o.serverId, 11);
  name.copy(b, 15);
  return b;
}

function connectError(err: unknown, where: Record<string, string | number>, what: string): TidemarkError {
  if (err instanceof TidemarkError) return err;
  return new TidemarkError(`binlog archiver: ${what}: ${errorText(err)}`, {
    code: 'BACKUP_LOG_CONNECT',
    retriable: isRetriableDbError(err) || serverFields(err).errno === undefined,
    cause: err,
    context: { ...where, errno: serverFields(err).errno },
  });
}

/** mysql2's destroy() only half-closes the socket, and a dump keeps streaming into it: close it for good. */
function hangUp(conn: mysql.Connection): void {
  conn.destroy();
  (conn as unknown as { stream?: { destroy(): void } }).stream?.destroy();
}

export interface EventSink {
  /** One event's bytes (a copy: the caller may keep it). */
  event(raw: Buffer): void;
  /** The dump ended: `err` is why (a TidemarkError); null when the server ended it (it does not, blocking). */
  end(err: TidemarkError | null): void;
}

export interface DumpHandle {
  /** Stops the dump and closes the connection. */
  close(): void;
  pause(): void;
  resume(): void;
}

/** Connects, sets the session up and starts the dump; events and the end go to `sink`. */
export async function startDump(ep: MysqlEndpoint, o: DumpOptions, sink: EventSink): Promise<DumpHandle> {
  const where = { host: ep.host, port: ep.port, file: o.file, position: String(o.pos) };
  const conn = mysql.createConnection({ ...connectionOptions(ep, { keepAlive: true }) });
  let ended = false;
  const finish = (err: TidemarkError | null) => {
    if (ended) return;
    ended = true;
    hangUp(conn);
    sink.end(err);
  };
  conn.on('error', (err) => finish(connectError(err, where, 'the replication connection failed')));
  const q = (sql: string) =>
    new Promise<void>((res, rej) => {
      conn.query(sql, (err) => (err ? rej(err) : res()));
    });
  try {
    await q('SET @master_binlog_checksum = @@global.binlog_checksum');
    await q('SET @mariadb_slave_capability = 4');
    await q(`SET @master_heartbeat_period = ${Math.round(o.heartbeatSeconds * 1e9)}`);
  } catch (err) {
    ended = true;
    hangUp(conn);
    throw connectError(err, where, `cannot set up the replication session on ${ep.host}:${ep.port}`);
  }
  const raw = conn as unknown as RawConnection;
  let started = false;
  const command = {
    onResult(err: Error) {
      finish(connectError(err, where, 'the replication connection failed'));
    },
    execute(packet: InPacket | undefined, connection: RawConnection): boolean {
      if (!started) {
        started = true;
        connection._resetSequenceId();
        const buffer = dumpPacket(o);
        connection.writePacket({
          buffer,
          length: () => buffer.length,
          writeHeader(seq: number) {
            buffer.writeUIntLE(buffer.length - 4, 0, 3);
            buffer.writeUInt8(seq, 3);
          },
        });
        return false;
      }
      if (packet === undefined) return false;
      if (packet.isError()) {
        const err = packet.asError(connection.clientEncoding);
        const f = serverFields(err);
        finish(
          f.errno === ER_MASTER_FATAL_ERROR_READING_BINLOG
            ? gapError(`the server cannot send '${o.file}' from ${o.pos}: ${errorText(err)}`, {
                file: o.file,
                position: String(o.pos),
              })
            : connectError(err, where, 'the binlog dump was refused'),
        );
        return true;
      }
      if (packet.isEOF()) {
        finish(connectError(new Error('the server ended the binlog dump'), where, 'dump ended'));
        return true;
      }
      // The first byte is the OK marker (0x00); the rest is one whole event (mysql2 joins 16 MiB packets).
      sink.event(Buffer.from(packet.buffer.subarray(packet.offset + 1, packet.end)));
      return false;
    },
  };
  raw.addCommand(command);
  return {
    close: () => finish(null),
    pause: () => raw.pause(),
    resume: () => raw.resume(),
  };
}

/** The server's binlog files, oldest first (SHOW BINARY LOGS). */
export async function binlogFiles(ep: MysqlEndpoint): Promise<Array<{ file: string; size: bigint }>> {
  const where = { host: ep.host, port: ep.port };
  let conn: mysqlPromise.Connection;
  try {
    conn = await mysqlPromise.createConnection(connectionOptions(ep));
  } catch (err) {
    throw connectError(err, where, `cannot connect to ${ep.host}:${ep.port}`);
  }
  try {
    const [rows] = await conn.query('SHOW BINARY LOGS');
    return (rows as Array<Record<string, unknown>>).map((r) => ({
      file: String(r['Log_name']),
      size: BigInt(String(r['File_size'])),
    }));
  } catch (err) {
    throw connectError(err, where, 'SHOW BINARY LOGS failed (is log_bin on, and has the account BINLOG MONITOR?)');
  } finally {
    await conn.end().catch(() => undefined);
  }
}

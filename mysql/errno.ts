/**
 * The one table of MySQL/MariaDB errors tidemark knows: server errnos and client (mysql2 / socket) codes, each
 * with a NEUTRAL class and whether a fresh attempt (reconnect, replay) may cure it. errors.ts classifies with it;
 * capture, apply, rewind and failover turn a class into their own error codes. Data only.
 *
 * Rules for an entry (mysql/README.md):
 *   - retriable only when waiting and trying again can succeed WITHOUT a human: the network, the server's
 *     restart, a lock, a kill, overload. A refusal that stays true (access, syntax, a duplicate key) is not.
 *   - class `gone` means the connection died while a statement may have run: its outcome is unknown.
 *   - an errno not in the table is not retriable (core/backoff.ts: unknown errors are not retried).
 *   - this table is the union of capture's and apply's former tables (issue #12); each line says why.
 */

/** What kind of failure, independent of who meets it. */
export type MysqlErrorClass =
  /** No session could be made (refused, unreachable, too many connections); nothing ran. */
  | 'connect'
  /** The session died (shutdown, kill, network): a statement in flight has an unknown outcome. */
  | 'gone'
  /** The server stopped the statement (KILL QUERY, max_statement_time) and rolled it back. */
  | 'interrupted'
  /** Lock wait timeout or deadlock: the statement (or transaction) was rolled back. */
  | 'lock'
  /** The account cannot log in (password, unknown user or host, plugin). */
  | 'auth'
  /** The account lacks a privilege for the statement. */
  | 'access'
  /** The server refuses writes (read_only, super_read_only, a read-only transaction). */
  | 'read-only'
  /** A duplicate key: the row is already there. */
  | 'duplicate'
  /** The binlog position to read from is gone (purged, impossible). */
  | 'binlog'
  /** The statement does not parse. */
  | 'syntax'
  /** The statement names a table that does not exist. */
  | 'missing'
  /** Anything else: not retriable. */
  | 'other';

export interface ErrnoEntry {
  readonly cls: MysqlErrorClass;
  readonly retriable: boolean;
  /** Only when the server's message matches (the errno is shared with unrelated errors). */
  readonly when?: RegExp;
}

const e = (cls: MysqlErrorClass, retriable: boolean, when?: RegExp): ErrnoEntry =>
  when ? { cls, retriable, when } : { cls, retriable };

/** Server (and libmysqlclient-numbered client) errnos. */
export const ERRNO_TABLE: ReadonlyMap<number, ErrnoEntry> = new Map([
  // connect: nothing ran; the server may be starting, or others may disconnect.
  [1040, e('connect', true)], // ER_CON_COUNT_ERROR too many connections: frees up as sessions end
  [2002, e('connect', true)], // CR_CONNECTION_ERROR (socket): the server is not up yet (capture's table)
  [2003, e('connect', true)], // CR_CONN_HOST_ERROR: the host refuses or is down, e.g. restarting (capture's table)
  // MariaDB ER_SLAVE_SAME_ID: usually tidemark's own previous dump connection still being torn down after a cut;
  // it goes away. (MySQL uses 4052 for an unrelated MFA error, hence the message test.)
  [4052, e('connect', true, /server_id/i)],
  // gone: the session is dead, a statement in flight may or may not have taken effect.
  [1053, e('gone', true)], // ER_SERVER_SHUTDOWN: shutdown in progress; reconnect after the restart
  [1077, e('gone', true)], // ER_NORMAL_SHUTDOWN: the server is shutting down (capture's table)
  [1152, e('gone', true)], // ER_ABORTING_CONNECTION: the server aborted this connection (capture's table)
  [1159, e('gone', true)], // ER_NET_READ_INTERRUPTED: network read timed out (capture's table)
  [1161, e('gone', true)], // ER_NET_WRITE_INTERRUPTED: network write timed out (capture's table)
  [1927, e('gone', true)], // MariaDB ER_CONNECTION_KILLED: KILL CONNECTION (a takeover, an operator)
  [2006, e('gone', true)], // CR_SERVER_GONE_ERROR: server has gone away
  [2013, e('gone', true)], // CR_SERVER_LOST: lost connection during query
  [4031, e('gone', true)], // MariaDB ER_CLIENT_INTERACTION_TIMEOUT: idle past wait_timeout (apply's table)
  // interrupted / lock: the server rolled the statement back; running it again can succeed.
  [1317, e('interrupted', true)], // ER_QUERY_INTERRUPTED: KILL QUERY or a statement time limit
  [1205, e('lock', true)], // ER_LOCK_WAIT_TIMEOUT: another session held the row; it lets go
  [1213, e('lock', true)], // ER_LOCK_DEADLOCK: the transaction was chosen as victim; replay it
  // read-only: retriable, a replica is made writable again by an operator or a takeover (apply waits for it).
  [1290, e('read-only', true, /read[-_]only/i)], // ER_OPTION_PREVENTS_STATEMENT naming --read-only/super_read_only
  [1836, e('read-only', true)], // ER_READ_ONLY_MODE
  [1792, e('read-only', true)], // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION: transaction_read_only (probes' table)
  // auth: the account as configured cannot log in; retrying the same password does not help.
  [1045, e('auth', false)], // ER_ACCESS_DENIED_ERROR: wrong password or unknown user
  [1130, e('auth', false)], // ER_HOST_NOT_PRIVILEGED: the account may not connect from this host
  [1251, e('auth', false)], // ER_NOT_SUPPORTED_AUTH_MODE: the client cannot do the account's auth plugin
  [1698, e('auth', false)], // ER_ACCESS_DENIED_NO_PASSWORD_ERROR (unix_socket accounts)
  [1862, e('auth', false)], // ER_MUST_CHANGE_PASSWORD_LOGIN: the password expired
  // access: a privilege is missing until someone grants it.
  [1044, e('access', false)], // ER_DBACCESS_DENIED_ERROR: no access to the database
  [1142, e('access', false)], // ER_TABLEACCESS_DENIED_ERROR
  [1143, e('access', false)], // ER_COLUMNACCESS_DENIED_ERROR
  [1227, e('access', false)], // ER_SPECIFIC_ACCESS_DENIED_ERROR (e.g. REPLICATION SLAVE, SUPER)
  [1370, e('access', false)], // ER_PROCACCESS_DENIED_ERROR
  // data and statement errors: the same statement fails the same way again.
  [1062, e('duplicate', false)], // ER_DUP_ENTRY: for apply, the replica diverged
  [1236, e('binlog', false)], // ER_MASTER_FATAL_ERROR_READING_BINLOG: the position is gone, a new baseline is needed
  [1064, e('syntax', false)], // ER_PARSE_ERROR
  [1146, e('missing', false)], // ER_NO_SUCH_TABLE
]);

/** Client-side codes (mysql2 and Node sockets), for errors without a server errno. */
export const CODE_TABLE: ReadonlyMap<string, ErrnoEntry> = new Map([
  // connect: no session was made; the server or the network may come back.
  ['ECONNREFUSED', e('connect', true)], // nothing listens (yet): the server is down or restarting
  ['ETIMEDOUT', e('connect', true)], // mysql2's connect timeout, or no answer from the host
  ['EHOSTUNREACH', e('connect', true)], // no route: a network partition heals
  ['ENETUNREACH', e('connect', true)], // the same, for the whole network
  ['EAI_AGAIN', e('connect', true)], // DNS temporarily failed
  ['ER_CON_COUNT_ERROR', e('connect', true)], // 1040 by name (apply's table)
  // gone: the session broke; an in-flight statement has an unknown outcome.
  ['ECONNRESET', e('gone', true)], // the peer reset the connection
  ['EPIPE', e('gone', true)], // wrote to a closed socket
  ['PROTOCOL_CONNECTION_LOST', e('gone', true)], // mysql2: the server closed the connection
  ['PROTOCOL_SEQUENCE_TIMEOUT', e('gone', true)], // mysql2: no answer within the command timeout
  ['ERR_STREAM_WRITE_AFTER_END', e('gone', true)], // wrote after the socket ended (capture's table)
  ['ER_SERVER_SHUTDOWN', e('gone', true)], // 1053 by name (apply's table)
  ['ER_CONNECTION_KILLED', e('gone', true)], // 1927 by name (apply's table)
  ['ER_CLIENT_INTERACTION_TIMEOUT', e('gone', true)], // 4031 by name (apply's table)
]);

/**
 * The one error root of tidemark. Every error that crosses a module boundary is a TidemarkError (or a subclass)
 * carrying `retriable` (may the same call succeed if tried again?), a stable `code`, context fields, and the
 * original `cause`. Unknown errors are NOT retriable (see STYLE.md §5). Messages never contain secrets: callers
 * put host/port/user in `context`, never passwords.
 */
export interface ErrorContext {
  [key: string]: string | number | bigint | boolean | undefined | null;
}

/**
 * Every `TidemarkError.code`, grouped by the floor that raises it. Each line says what the code means and whether
 * it is retriable by default (a site may override `retriable`; `withRetry` retries only what is marked so).
 * Codes are stable: operators grep logs and `tidemark status` for them, tests assert them. Add a code here, with
 * its line, before using it; core/README.md has the same list as a table for operators.
 */
export type ErrorCode =
  // ── any floor ──
  /** The config file is wrong: names the key and the expected value (ConfigError). Not retriable. */
  | 'CONFIG'
  /** A command line is wrong: a flag, a name, a file that must (not) exist. Not retriable. */
  | 'USAGE'
  /** Stored or received bytes are damaged: journal, cursor, codec, a wire frame (CorruptionError). Not retriable. */
  | 'CORRUPT'
  /** `withRetry` (or capture's stream loop) gave up after its attempts; `cause` holds the last error. Not retriable. */
  | 'RETRIES_EXHAUSTED'
  /** The operation was stopped by its AbortSignal before it finished; nothing half-done is kept. Not retriable. */
  | 'ABORTED'
  /** The process was asked to stop (a signal) or a stream ended under a reader; retriable when a stream ended. */
  | 'STOPPED'
  /** An invariant broke inside tidemark: a bug to report; retriable only in the ship receiver (the link restarts). */
  | 'INTERNAL'
  /** A local file could not be written (e.g. `tidemark init --output`). Not retriable. */
  | 'IO'
  // ── record/ ──
  /** The record codec met a value, op, phase or position kind it cannot encode or decode. Not retriable. */
  | 'CODEC_VALUE'
  // ── journal/ ──
  /** The journal ends before the LSN a reader asked to start at (the reader is ahead of it). Not retriable. */
  | 'JOURNAL_BEHIND'
  /** A journal truncation is in progress; the write is refused until it ends. Not retriable. */
  | 'JOURNAL_BUSY'
  /** The journal writer was closed; open a new one. Not retriable. */
  | 'JOURNAL_CLOSED'
  /** The journal cannot be cut back to the asked LSN (it ends before it). Not retriable. */
  | 'JOURNAL_CUT'
  /** The journal directory has a format this tidemark does not read. Not retriable. */
  | 'JOURNAL_FORMAT'
  /** One frame's payload exceeds the journal's maximum frame size. Not retriable. */
  | 'JOURNAL_FRAME_TOO_LARGE'
  /** The asked LSN was removed by retention (or the journal was replaced): rebaseline the reader. Not retriable. */
  | 'JOURNAL_GONE'
  /** The journal's identity file does not match what the caller expects (another journal). Not retriable. */
  | 'JOURNAL_IDENTITY'
  /** A journal write failed; the writer is poisoned and must be reopened. Not retriable. */
  | 'JOURNAL_IO'
  /** A promoted or failed-back journal does not descend from the one it must continue. Not retriable. */
  | 'JOURNAL_LINEAGE'
  /** Another process holds the journal's lock (JournalLockedError); retriable when acquiring with a wait. */
  | 'JOURNAL_LOCKED'
  /** A mirror frame's LSN does not follow the head LSN: frames were lost on the way. Not retriable. */
  | 'JOURNAL_LSN_GAP'
  /** A mirror-only operation on a source journal, or a source-only one on a mirror. Not retriable. */
  | 'JOURNAL_MIRROR'
  /** A frame sent again to a mirror differs from the one it already stored. Not retriable. */
  | 'JOURNAL_MIRROR_MISMATCH'
  /** A mirror cannot follow the truncations its source journal recorded. Not retriable. */
  | 'JOURNAL_MIRROR_RECONCILE'
  /** The journal a target applied from was deleted or replaced: rebaseline and `skip --to-baseline`. Not retriable. */
  | 'JOURNAL_MISMATCH'
  /** The journal has no identity file yet (its writer has not opened it). Retriable. */
  | 'JOURNAL_NO_IDENTITY'
  /** The journal was truncated under a reader (JournalTruncatedError): reopen at the new head. Retriable. */
  | 'JOURNAL_TRUNCATED'
  // ── MySQL/MariaDB servers (capture, apply, failover, rollback) ──
  /** A server cannot be reached, dropped the connection, or went silent. Retriable. */
  | 'CONNECT'
  /** A server refused the account's credentials (access denied). Not retriable. */
  | 'AUTH'
  /** The account lacks a privilege tidemark needs; the message names the GRANT. Not retriable. */
  | 'PRIVILEGE'
  /** Any other source server error capture cannot classify. Not retriable. */
  | 'SOURCE'
  /** A server did not answer within the step's timeout (fencing). Retriable. */
  | 'DB_TIMEOUT'
  // ── capture/ ──
  /** The source is not set up for capture (binlog format, row image, grants, …): PrerequisiteError. Not retriable. */
  | 'PREREQUISITE'
  /** A binlog position capture cannot request (offset beyond 32 bits). Not retriable. */
  | 'POSITION'
  /** The binlog file capture must resume from was purged on the source: rebaseline. Not retriable. */
  | 'BINLOG_PURGED'
  /** The binlog's events are out of the order capture needs (rows without table map, no commit, …). Not retriable. */
  | 'BINLOG_SEQUENCE'
  /** The source wrote an incident event: changes may be missing from the binlog. Not retriable. */
  | 'BINLOG_INCIDENT'
  /** A table map lacks the column metadata capture needs (binlog_row_metadata=FULL). Not retriable. */
  | 'BINLOG_METADATA'
  /** DDL on an included table raced the baseline snapshot; the baseline starts again. Retriable. */
  | 'BASELINE_RACE'
  /** XA transactions are prepared on the source while the baseline wants a snapshot. Retriable. */
  | 'BASELINE_XA'
  /** Copying a table that moved into the captured set (rename, filter change) failed. Not retriable. */
  | 'TABLE_COPY'
  /** An included table has a column type capture cannot carry; exclude it. Not retriable. */
  | 'UNSUPPORTED_TYPE'
  /** An XA transaction (or XA COMMIT … ONE PHASE) touched included tables. Not retriable. */
  | 'UNSUPPORTED_XA'
  /** A statement-format DML event touched included tables (binlog_format must be ROW). Not retriable. */
  | 'STATEMENT_DML'
  /** A DDL statement relates an included and an excluded schema (e.g. EXCHANGE PARTITION). Not retriable. */
  | 'CROSS_SCHEMA_DDL'
  /** On resume, the binlog did not replay the transaction already written to the journal. Not retriable. */
  | 'RESUME_MISMATCH'
  /** Writing captured records into the journal failed (SinkError). Not retriable. */
  | 'SINK'
  /** A captured column value cannot be decoded (the value itself is never logged). Not retriable. */
  | 'VALUE'
  // ── apply/ ──
  /** A journal entry the applier cannot use (EntryError). Not retriable. */
  | 'APPLY_BAD_ENTRY'
  /** The target does not hold what the journal says it should (duplicate key, row missing): DivergenceError. Not retriable. */
  | 'APPLY_DIVERGED'
  /** A target error that is neither transient nor divergence. Not retriable. */
  | 'APPLY_FAILED'
  /** A table without primary key while targets.no_primary_key refuses it. Not retriable. */
  | 'APPLY_NO_PK'
  /** A transient target error (deadlock, lost connection, …): the transaction is rolled back and retried. Retriable. */
  | 'APPLY_RETRY'
  /** The applier session's charset, time zone or sql_mode did not take effect. Not retriable. */
  | 'APPLY_SESSION'
  /** The applier was driven out of order (run() before open(), …): a bug. Not retriable. */
  | 'APPLY_STATE'
  /** A value cannot be written as SQL for its column (ValueError). Not retriable. */
  | 'APPLY_VALUE'
  /** A change to a system-versioned table cannot be applied as captured. Not retriable. */
  | 'APPLY_VERSIONED'
  /** The target is held by rewind/forward/undo (or was moved by it); apply pauses. Retriable. */
  | 'TARGET_HELD'
  /** The target is read-only (@@read_only); apply waits for it to become writable. Retriable. */
  | 'TARGET_READ_ONLY'
  /** `verify` met a table whose shape it cannot checksum (a key column missing). Not retriable. */
  | 'VERIFY_SHAPE'
  /** A cross-engine column: its source type has no exact mapping, or the target column's type is not one it maps to. Not retriable. */
  | 'APPLY_TYPE_MAP'
  /** A cross-engine value that the target type cannot hold exactly (zero date, NaN, NUL in text, …). Not retriable. */
  | 'APPLY_VALUE_MAP'
  // ── ship/ (tcp, kafka, redis) ──
  /** A ship link broke (closed, reset, the peer reported an error). Retriable: the link reconnects. */
  | 'LINK_DOWN'
  /** The ship link's peer sent something the protocol does not allow. Retriable. */
  | 'LINK_PROTOCOL'
  /** The ship link's incoming byte stream is damaged. Retriable. */
  | 'LINK_CORRUPT'
  /** The ship link's peer was silent for 3 heartbeats. Retriable. */
  | 'LINK_DEAD'
  /** The ship receiver refused a connection (auth, site, protocol) and closes it; its peer sees SHIP_REFUSED. Retriable. */
  | 'LINK_REFUSED'
  /** A ship stream message is malformed (also the wire code a peer is told). Retriable on the link. */
  | 'PROTOCOL'
  /** A broker stream (kafka, redis) skips LSNs: frames are missing. Not retriable. */
  | 'SHIP_GAP'
  /** The LSN a standby needs is no longer in the broker stream (retention): rebaseline it. Not retriable. */
  | 'SHIP_GONE'
  /** The standby refused this shipper for good (TLS identity, wrong site, auth). Not retriable. */
  | 'SHIP_REFUSED'
  /** The journal reader handed the shipper frames out of LSN order: a bug. Not retriable. */
  | 'SHIP_SOURCE'
  /** Kafka cannot be reached or did not answer in time. Retriable. */
  | 'KAFKA_UNAVAILABLE'
  /** The Kafka topic lacks the partition tidemark uses. Not retriable. */
  | 'KAFKA_TOPIC'
  /** Another producer appended to the Kafka topic; this shipper resumes from the topic. Retriable. */
  | 'KAFKA_OTHER_WRITER'
  /** The Kafka topic's offsets say messages existed but retention deleted them all: tidemark will not guess. Not retriable. */
  | 'KAFKA_RESUME_UNKNOWN'
  /** Redis cannot be reached or did not answer in time. Retriable. */
  | 'REDIS_UNAVAILABLE'
  /** `tidemark certs`: a certificate it made does not verify against the CA. Not retriable. */
  | 'CERTS_CHECK'
  /** `tidemark certs`: the openssl command is missing or failed. Not retriable. */
  | 'CERTS_OPENSSL'
  // ── rollback/ (rewind, forward, undo, history, restore) ──
  /** The rewind/forward/undo point does not exist or is not reachable (not applied, baseline, nothing committed). Not retriable. */
  | 'REWIND_POINT'
  /** The journal is behind the source: rewind would lose changes not yet captured. Retriable. */
  | 'REWIND_BEHIND'
  /** The target is applying a DDL statement; rewind waits for it. Retriable. */
  | 'REWIND_BUSY'
  /** The connection failed during COMMIT: whether the rewind committed is unknown; check before retrying. Not retriable. */
  | 'REWIND_COMMIT_UNKNOWN'
  /** `undo --mode nocascade`: later transactions touched the same rows. Not retriable. */
  | 'REWIND_CONFLICT'
  /** `undo`: a later DDL statement changed a table the transaction touched. Not retriable. */
  | 'REWIND_DDL'
  /** A rewind/forward/undo statement failed on the server (or answered an unexpected number of results). Not retriable. */
  | 'REWIND_FAILED'
  /** A transient server error during a rewind (deadlock, lock wait, lost connection before COMMIT): run it again. Retriable. */
  | 'REWIND_RETRY'
  /** The target is read-only (read_only / super_read_only): rewind cannot write; retriable once it is writable. */
  | 'REWIND_READ_ONLY'
  /** A value in the journal cannot be written as a literal by a rewind statement. Not retriable. */
  | 'REWIND_VALUE'
  /** Foreign-key cascades make the rewind/forward unsafe here; the message says how to do it instead. Not retriable. */
  | 'REWIND_FK_CASCADE'
  /** A guarded statement found the row not as the journal says: someone else changed it (GuardError). Not retriable. */
  | 'REWIND_GUARD'
  /** The rewind session lacks FOUND_ROWS / multiple statements: a bug. Not retriable. */
  | 'REWIND_SESSION'
  /** The rollback index points at a row or transaction that is missing. Not retriable. */
  | 'INDEX'
  /** The rollback index file is damaged, of another version, or stale (IndexDamagedError): it is rebuilt. Retriable. */
  | 'INDEX_DAMAGED'
  /** There is no journal to index or rewind from (nothing captured yet). Not retriable. */
  | 'NO_JOURNAL'
  /** A system-versioned table cannot be rewound (its history is not in the journal). Not retriable. */
  | 'UNSUPPORTED_VERSIONED'
  /** `restore` ended before the last transaction it had to apply. Not retriable. */
  | 'RESTORE_SHORT'
  /** A PostgreSQL table captured without REPLICA IDENTITY FULL has no before images: rewind/undo refuse it. Not retriable. */
  | 'REWIND_NO_BEFORE_IMAGE'
  // ── failover/ (promotion, fencing, VIP, witness, quarantine, failback) ──
  /** `failover`/`switchover` refused: another standby was promoted, the primary is still writable, … Not retriable. */
  | 'FAILOVER_REFUSED'
  /** The promotion state on disk lacks what failback/takeover needs. Not retriable. */
  | 'FAILOVER_STATE'
  /** Promoting a standby failed (no binlog, read_only stuck, the binlog kept moving); retriable where the binlog moved. */
  | 'PROMOTE_FAILED'
  /** Demoting (SET GLOBAL read_only) the old primary failed. Not retriable. */
  | 'DEMOTE_FAILED'
  /** The old primary could not be fenced before failback. Not retriable. */
  | 'FENCE'
  /** An `ip`/`arping` command for the VIP failed or did not start; retriable when it timed out. */
  | 'VIP_COMMAND'
  /** A configured hook command could not be started. Not retriable. */
  | 'COMMAND_START'
  /** The witness cannot be reached (refused, TLS, timeout, stopped). Retriable. */
  | 'WITNESS_UNREACHABLE'
  /** The witness answered with a bad status or a body that is not a view. Retriable. */
  | 'WITNESS_BAD_VIEW'
  /** The witness refused a candidate report (HTTP status and reason in the message); retriable on a 5xx. */
  | 'WITNESS_REFUSED'
  /** Quarantine: the errant transactions do not start at a unit boundary of the journal. Not retriable. */
  | 'QUARANTINE_BOUNDARY'
  /** Failback: capture did not reach the old primary's binlog end in time. Retriable. */
  | 'FAILBACK_BEHIND'
  /** Failback: the journal directory is in use (stop `tidemark run` at this site first). Not retriable. */
  | 'FAILBACK_BUSY'
  /** Failback: the old primary's journal and the promoted one do not share the branch point. Not retriable. */
  | 'FAILBACK_LINEAGE'
  /** Failback: no standby of this source was promoted. Not retriable. */
  | 'FAILBACK_NO_PROMOTION'
  /** A step of fencing an old PostgreSQL primary failed or passed its deadline (the step is named); not confirmed. Retriable. */
  | 'FENCE_STEP'
  /** The server to promote could not be captured afterwards (PostgreSQL: wal_level is not logical). Not retriable. */
  | 'PROMOTE_NOT_CAPTURABLE'
  // ── postgres/, capture/postgres, apply/postgres (issue #14) ──
  /** The PostgreSQL replication stream broke its protocol (an unknown message, a short buffer). Not retriable. */
  | 'PG_PROTOCOL'
  /** A PostgreSQL server cannot be reached, dropped the connection, or is shutting down/starting (SQLSTATE 08, 57P01-03). Retriable. */
  | 'PG_CONNECT'
  /** A PostgreSQL server refused the role's credentials (SQLSTATE class 28). Not retriable. */
  | 'PG_AUTH'
  /** The PostgreSQL role lacks a privilege (42501); the message names it. Not retriable. */
  | 'PG_PRIVILEGE'
  /** PostgreSQL is out of a resource: connections/memory retriable (53300, 53200, 53000), disk full and limits (53100, 53400) not. */
  | 'PG_RESOURCES'
  /** A transient PostgreSQL conflict: serialization failure, deadlock, lock not available (40001, 40P01, 55P03). Retriable. */
  | 'PG_TRANSIENT'
  /** Any other PostgreSQL server or driver error; the message keeps its SQLSTATE. Not retriable. */
  | 'PG_SERVER'
  /** The replication slot was invalidated (WAL removed past max_slot_wal_keep_size): re-baseline. Not retriable. */
  | 'PG_SLOT_LOST'
  /** PostgreSQL capture met what it cannot replay (a DDL text of several statements or from a function, a late table): it stops, nothing is skipped. Not retriable. */
  | 'PG_UNSUPPORTED'
  /** An unchanged TOAST value could not be filled from the old image (no REPLICA IDENTITY FULL image). Not retriable. */
  | 'PG_TOAST_UNRESOLVED'
  /** A table changed shape without a DDL message and the change cannot be replayed exactly (no event triggers). Not retriable. */
  | 'PG_DDL_UNTRACKED'
  // ── backup/: the pipeline and the stores (issue #13) ──
  /** A backup piece or chunk failed its check (hash, tag, order, truncation): nothing of it is released. Not retriable. */
  | 'BACKUP_INTEGRITY'
  /** The master key is not the one a backup was sealed with (key id or unwrap tag): nothing is read. Not retriable. */
  | 'BACKUP_KEY'
  /** A backup store request failed (network, 5xx, throttling, access, no bucket); retriable for network, 5xx, throttling. */
  | 'BACKUP_STORE'
  // ── backup/: the stream parser, the catalog, retention (issue #13) ──
  /** A mariadb-backup (mbstream) stream is malformed or a chunk fails its CRC32. Not retriable. */
  | 'MBSTREAM_CORRUPT'
  /** A backup manifest or star object is invalid or of a newer format version; names the key. Not retriable. */
  | 'BACKUP_MANIFEST'
  /** No backup with that id in the catalog (no manifest in the store: it does not exist). Not retriable. */
  | 'BACKUP_NOT_FOUND'
  /** A backup's chain is broken: a parent named by a manifest has no manifest. Not retriable. */
  | 'BACKUP_CHAIN_BROKEN'
  /** A backup stream did not start at the LSN the catalog expects (or is not of the expected kind); not sealed. Not retriable. */
  | 'BACKUP_LSN_MISMATCH'
  // ── backup/logs: the binlog archiver (issue #13) ──
  /** The binlog archive cannot continue without a hole: the binlog it needs is purged (errno 1236) or the GTIDs do not continue it; a new full backup is needed. Not retriable. */
  | 'BACKUP_LOG_GAP'
  /** The binlog stream broke its own rules: an event not where the previous one ended, a CRC32 mismatch, a malformed event. Not retriable. */
  | 'BACKUP_LOG_STREAM'
  /** The archiver's replication connection failed or was refused (retriable when the network or a restart is at fault). */
  | 'BACKUP_LOG_CONNECT'
  // ── backup/: restore from a backup chain (issue #13) ──
  /** The restore target directory is not usable (not empty, not creatable). Not retriable. */
  | 'BACKUP_RESTORE_TARGET'
  /** mbstream or mariadb-backup is missing or failed during a restore (extract, --prepare). Not retriable. */
  | 'BACKUP_RESTORE_TOOL'
  /** Point-in-time restore: the target is before every backup of the job (or before the first archived commit). Not retriable. */
  | 'BACKUP_PITR_BEFORE'
  /** Point-in-time restore: the target is after the last archived log segment. Retriable (the archiver may catch up). */
  | 'BACKUP_PITR_AFTER'
  /** Point-in-time restore: the log archive has a gap between the backup and the target (names the missing seq). Not retriable. */
  | 'BACKUP_PITR_GAP'
  /** Point-in-time replay failed (mariadb-binlog or mariadb), or the restored server is not at the target GTID. Not retriable. */
  | 'BACKUP_PITR_REPLAY'
  /** A restore drill failed: a piece or chunk did not verify, the restore or replay failed, or tables differ from the source. Not retriable. */
  | 'BACKUP_DRILL_FAILED'
  // ── backup/: the runner (issue #13) ──
  /** The backup stream command failed (exit status, signal, cannot start); its stderr tail is in the message. Not retriable. */
  | 'BACKUP_STREAM'
  /** Another run or expire of the same backup job is in progress on this host (its lock file names the pid). Retriable. */
  | 'BACKUP_BUSY'
  /** A piece read from a copy's source store does not match its manifest (SHA-256 or size); names the backup and piece. Not retriable. */
  | 'BACKUP_COPY_MISMATCH'
  // ── node/ and the commands ──
  /** A topology tidemark does not support (a broker standby following a promoted journal). Not retriable. */
  | 'NOT_SUPPORTED'
  /** `tidemark skip` refused (nothing to skip, a unit not at the head, …). Not retriable. */
  | 'SKIP_REFUSED'
  /** `tidemark skip` did its work but could not write the audit line. Not retriable. */
  | 'AUDIT';

export interface TidemarkErrorOptions {
  code: ErrorCode;
  retriable?: boolean;
  cause?: unknown;
  context?: ErrorContext;
}

export class TidemarkError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly context: ErrorContext;

  constructor(message: string, opts: TidemarkErrorOptions) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'TidemarkError';
    this.code = opts.code;
    this.retriable = opts.retriable ?? false;
    this.context = opts.context ?? {};
  }
}

/** Configuration is wrong: names the key and the expected value. Never retriable. */
export class ConfigError extends TidemarkError {
  constructor(message: string, context: ErrorContext = {}) {
    super(message, { code: 'CONFIG', retriable: false, context });
    this.name = 'ConfigError';
  }
}

/** Stored bytes are damaged (journal, cursor, codec). Never retriable: a human must look. */
export class CorruptionError extends TidemarkError {
  constructor(message: string, context: ErrorContext = {}, cause?: unknown) {
    super(message, { code: 'CORRUPT', retriable: false, context, cause });
    this.name = 'CorruptionError';
  }
}

/** Fields a mysql2 server error carries; kept whole when wrapping (STYLE.md §5). */
export interface ServerErrorFields {
  code?: string;
  errno?: number;
  sqlState?: string;
  sqlMessage?: string;
}

export function isRetriable(err: unknown): boolean {
  return err instanceof TidemarkError && err.retriable;
}

/**
 * "a: caused by: b" chain of messages through `cause`, for a final one-line report. A cause whose message the
 * line already contains (wrappers often embed their cause's message) is not repeated.
 */
export function describeChain(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur !== undefined && cur !== null && depth < 8; depth++) {
    if (cur instanceof Error) {
      if (cur.message !== '' && !parts.some((p) => p.includes(cur instanceof Error ? cur.message : ''))) {
        parts.push(cur.message);
      }
      cur = (cur as { cause?: unknown }).cause;
    } else {
      parts.push(String(cur));
      break;
    }
  }
  return parts.join(': caused by: ');
}

/** Resolves after `ms`, or at once when `signal` aborts (already aborted: immediately). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

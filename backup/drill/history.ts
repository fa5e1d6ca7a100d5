/**
 * The drill history (node:sqlite): one row per drill in a `drills` table of the store's catalog cache file
 * (`<catalog_dir>/<store>.sqlite`; a catalog rebuild replaces only its own tables, so the history stays).
 */
import { DatabaseSync } from 'node:sqlite';
import { BUSY_TIMEOUT_MS } from '../catalog.ts';

export interface DrillRecord {
  readonly job: string;
  readonly logJob: string;
  readonly startedAt: Date;
  readonly endedAt: Date;
  readonly ok: boolean;
  /** The backup restored and the GTID position replayed to (null when the drill failed before choosing). */
  readonly backup: string | null;
  readonly gtid: string | null;
  /** Tables compared, and those whose checksums differed. */
  readonly tables: number;
  readonly mismatches: readonly string[];
  /** The failure: error code and message. */
  readonly code: string | null;
  readonly error: string | null;
}

const SCHEMA = `CREATE TABLE IF NOT EXISTS drills(id INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL,
  log_job TEXT NOT NULL, started_ms INTEGER NOT NULL, ended_ms INTEGER NOT NULL, ok INTEGER NOT NULL, backup TEXT,
  gtid TEXT, tables INTEGER NOT NULL, mismatches TEXT NOT NULL, code TEXT, error TEXT);
CREATE INDEX IF NOT EXISTS drills_job ON drills(job, started_ms);`;

export class DrillHistory {
  readonly #db: DatabaseSync;

  constructor(path: string) {
    this.#db = new DatabaseSync(path, { timeout: BUSY_TIMEOUT_MS }); // shared with the catalog (catalog.ts)
    this.#db.exec(SCHEMA);
  }

  record(r: DrillRecord): void {
    this.#db
      .prepare(
        'INSERT INTO drills(job, log_job, started_ms, ended_ms, ok, backup, gtid, tables, mismatches, code, error) ' +
          'VALUES (?,?,?,?,?,?,?,?,?,?,?)',
      )
      .run(
        r.job,
        r.logJob,
        r.startedAt.getTime(),
        r.endedAt.getTime(),
        r.ok ? 1 : 0,
        r.backup,
        r.gtid,
        r.tables,
        JSON.stringify(r.mismatches),
        r.code,
        r.error,
      );
  }

  /** The newest `limit` drills of a job (all jobs when absent), newest first. */
  list(job?: string, limit = 20): DrillRecord[] {
    const rows = this.#db
      .prepare('SELECT * FROM drills WHERE (:job IS NULL OR job = :job) ORDER BY started_ms DESC, id DESC LIMIT :limit')
      .all({ job: job ?? null, limit }) as Array<Record<string, string | number | null>>;
    return rows.map((r) => ({
      job: String(r['job']),
      logJob: String(r['log_job']),
      startedAt: new Date(Number(r['started_ms'])),
      endedAt: new Date(Number(r['ended_ms'])),
      ok: r['ok'] === 1,
      backup: r['backup'] === null ? null : String(r['backup']),
      gtid: r['gtid'] === null ? null : String(r['gtid']),
      tables: Number(r['tables']),
      mismatches: JSON.parse(String(r['mismatches'])) as string[],
      code: r['code'] === null ? null : String(r['code']),
      error: r['error'] === null ? null : String(r['error']),
    }));
  }

  close(): void {
    this.#db.close();
  }
}

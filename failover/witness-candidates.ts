/**
 * The standbys' positions as the witness collects them, so that every standby's monitor can run the election
 * (decide.ts) over all the standbys, not only itself.
 *
 *   PUT /v1/candidates/<name>   a standby reports itself (with mutual TLS, <name> must be its certificate's CN):
 *     { "priority": <int>, "position": { "received": "<decimal>", "applied": "<decimal>" } | null,
 *       "eligible": <bool>, "promoted": "<ISO time>" | null }
 *   GET /v1/view, `candidates`:  [{ "name", "priority", "position", "eligible", "promoted", "age_ms" }, …]
 *
 * Positions travel as decimal strings (they are bigints, beyond 2^53). `age_ms` is how long ago the witness
 * received the report, on the witness's own clock: no two clocks need to agree. `promoted` is when the standby
 * was promoted, or when it started taking over (the claim it makes before acting): the witness keeps at most
 * one standby claiming it (CandidateBoard.put refuses a second), so two standbys that both decided to take
 * over cannot both act.
 *
 * Pure: no I/O. The witness holds the board (witness.ts); witness-client.ts sends reports and reads the list.
 */
import type { Candidate, StandbyPosition } from './decide.ts';

export const CANDIDATES_PATH = '/v1/candidates';
/** At most this many standbys are remembered (one entry per name). */
export const MAX_CANDIDATES = 64;
/** The largest request body the witness reads for a report. */
export const MAX_REPORT_BYTES = 4096;

/** What a standby reports about itself. */
export interface CandidateReport {
  readonly priority: number;
  readonly position: StandbyPosition | null;
  readonly eligible: boolean;
  /** ISO time when this standby was promoted (or started taking over); null while it is a standby. */
  readonly promoted: string | null;
}

/** A report as JSON: positions as decimal strings. */
export interface CandidateReportJson {
  readonly priority: number;
  readonly position: { readonly received: string; readonly applied: string } | null;
  readonly eligible: boolean;
  readonly promoted: string | null;
}

/** One entry of the view's `candidates`. */
export interface CandidateEntryJson extends CandidateReportJson {
  readonly name: string;
  /** How long ago the witness received it (witness clock). */
  readonly age_ms: number;
}

/** A standby as another standby reads it from the view. */
export interface WitnessCandidate extends Candidate {
  readonly promoted: string | null;
  readonly ageMs: number;
}

const SITE = /^[A-Za-z0-9][A-Za-z0-9-]{0,62}$/;
const DECIMAL = /^(0|[1-9][0-9]{0,19})$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const MAX_U64 = 2n ** 64n - 1n;
const REPORT_KEYS = ['priority', 'position', 'eligible', 'promoted'];

/** A site name as the config allows it (the sites section of the config). */
export const isSiteName = (name: string): boolean => SITE.test(name);

export function candidateReportJson(r: CandidateReport): CandidateReportJson {
  return {
    priority: r.priority,
    position: r.position && { received: r.position.received.toString(), applied: r.position.applied.toString() },
    eligible: r.eligible,
    promoted: r.promoted,
  };
}

type Bad = (what: string) => never;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function exactKeys(o: Record<string, unknown>, keys: readonly string[], what: string, bad: Bad): void {
  const missing = keys.filter((k) => !(k in o));
  const extra = Object.keys(o).filter((k) => !keys.includes(k));
  if (missing.length > 0) bad(`${what} lacks ${missing.join(', ')}`);
  if (extra.length > 0) bad(`${what} has unknown keys ${extra.join(', ')}`);
}

function decimal(v: unknown, what: string, bad: Bad): bigint {
  if (typeof v !== 'string' || !DECIMAL.test(v)) return bad(`${what} is not a decimal string`);
  const n = BigInt(v);
  return n <= MAX_U64 ? n : bad(`${what} is larger than 2^64 - 1`);
}

/** The fields of a report, checked; `at` prefixes the field names in the messages ("" or "candidates[0]."). */
function reportFields(o: Record<string, unknown>, at: string, bad: Bad): CandidateReport {
  const priority = o['priority'];
  if (typeof priority !== 'number' || !Number.isSafeInteger(priority) || Math.abs(priority) > 1_000_000) {
    bad(`${at}priority is not an integer`);
  }
  const p = o['position'];
  let position: StandbyPosition | null = null;
  if (p !== null) {
    if (!isObject(p)) return bad(`${at}position is not an object or null`);
    exactKeys(p, ['received', 'applied'], `${at}position`, bad);
    position = {
      received: decimal(p['received'], `${at}position.received`, bad),
      applied: decimal(p['applied'], `${at}position.applied`, bad),
    };
  }
  if (typeof o['eligible'] !== 'boolean') bad(`${at}eligible is not a boolean`);
  const promoted = o['promoted'];
  if (
    promoted !== null &&
    !(typeof promoted === 'string' && ISO.test(promoted) && !Number.isNaN(Date.parse(promoted)))
  ) {
    bad(`${at}promoted is not an ISO time or null`);
  }
  return {
    priority: priority as number,
    position,
    eligible: o['eligible'] as boolean,
    promoted: promoted as string | null,
  };
}

/** Reads a PUT body strictly; throws an Error naming the first field that does not fit. */
export function parseCandidateReport(j: unknown): CandidateReport {
  const bad: Bad = (what) => {
    throw new Error(`bad candidate report: ${what}`);
  };
  if (!isObject(j)) return bad('the body is not a JSON object');
  exactKeys(j, REPORT_KEYS, 'the body', bad);
  return reportFields(j, '', bad);
}

/** Checks the view's `candidates` (absent: an older witness, no entries); `bad` throws. */
export function parseCandidateEntries(v: unknown, bad: Bad): CandidateEntryJson[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > MAX_CANDIDATES)
    return bad(`candidates is not a list (of at most ${MAX_CANDIDATES})`);
  const names = new Set<string>();
  return v.map((raw: unknown, i): CandidateEntryJson => {
    const at = `candidates[${i}]`;
    if (!isObject(raw)) return bad(`${at} is not an object`);
    exactKeys(raw, ['name', ...REPORT_KEYS, 'age_ms'], at, bad);
    const name = raw['name'];
    if (typeof name !== 'string' || !isSiteName(name)) return bad(`${at}.name is not a site name`);
    if (names.has(name)) bad(`${at}.name "${name}" repeats`);
    names.add(name);
    const r = reportFields(raw, `${at}.`, bad);
    const age = raw['age_ms'];
    if (typeof age !== 'number' || !Number.isSafeInteger(age) || age < 0) bad(`${at}.age_ms is not a duration`);
    return { name, ...candidateReportJson(r), age_ms: age as number };
  });
}

/** An entry of a checked view as decide.ts's candidate, with its age and promotion. */
export function candidateOfEntry(e: CandidateEntryJson): WitnessCandidate {
  return {
    name: e.name,
    priority: e.priority,
    position: e.position && { received: BigInt(e.position.received), applied: BigInt(e.position.applied) },
    eligible: e.eligible,
    promoted: e.promoted,
    ageMs: e.age_ms,
  };
}

export type PutOutcome =
  | { readonly ok: true; readonly added: boolean; readonly evicted: string | null; readonly promotedChanged: boolean }
  | { readonly ok: false; readonly conflict: string };

interface Stored {
  readonly report: CandidateReport;
  readonly receivedAt: number;
}

/**
 * The witness's memory of the standbys' reports: one entry per name, at most `cap` names (a new name beyond
 * that evicts the least recently heard entry, one that does not claim a promotion first).
 */
export class CandidateBoard {
  readonly #entries = new Map<string, Stored>();
  readonly #cap: number;

  constructor(cap = MAX_CANDIDATES) {
    this.#cap = cap;
  }

  /**
   * Stores `name`'s report received at `at` (witness clock). A report with `promoted` set is refused while
   * another standby's entry claims a promotion: the first standby to claim a takeover is the only one.
   */
  put(name: string, report: CandidateReport, at: number): PutOutcome {
    if (report.promoted !== null) {
      for (const [other, s] of this.#entries) {
        if (other !== name && s.report.promoted !== null) {
          return { ok: false, conflict: `${other} was promoted at ${s.report.promoted}: it is the primary` };
        }
      }
    }
    const before = this.#entries.get(name);
    let evicted: string | null = null;
    if (!before && this.#entries.size >= this.#cap) {
      const byAge = [...this.#entries].sort((a, b) => a[1].receivedAt - b[1].receivedAt);
      const victim = byAge.find(([, s]) => s.report.promoted === null) ?? byAge[0];
      if (victim) {
        evicted = victim[0];
        this.#entries.delete(victim[0]);
      }
    }
    this.#entries.set(name, { report, receivedAt: at });
    return {
      ok: true,
      added: !before,
      evicted,
      promotedChanged: (before?.report.promoted ?? null) !== report.promoted,
    };
  }

  /** The entries, by name, with their age at `now` (witness clock). */
  list(now: number): CandidateEntryJson[] {
    return [...this.#entries]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, s]) => ({ name, ...candidateReportJson(s.report), age_ms: Math.max(0, now - s.receivedAt) }));
  }
}

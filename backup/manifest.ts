/**
 * The immutable backup manifest and the mutable star, as stored (JSON) and as used (typed, positions bigint).
 * Pure: encode/decode and the key layout of one backup in a BackupStore; no I/O.
 *
 * Layout in the store (backup/store.ts), one prefix per backup:
 *   <id>/piece-NNNNNN      the data, written by the pipeline (any key under <id>/ the manifest lists)
 *   <id>/manifest.json     written LAST, with putIfAbsent, never changed: without it the backup does not exist
 *   <id>/star.json         optional and mutable: present = starred (kind standalone | pitr, a note)
 * A backup id is `<UTC start YYYYMMDDTHHMMSSZ>-<job>-<type>-<6 hex>`, so keys sort by start time and an orphan
 * prefix (no manifest) carries its own age for the grace period of `expire`.
 *
 * Manifest JSON: bigint values (LSNs, sizes, positions, log sequence numbers) are decimal strings; times are ISO
 * 8601 UTC strings. `format` + `version` let a later tidemark refuse what it cannot read.
 */
import { z } from 'zod';
import { TidemarkError } from '../core/errors.ts';

export const MANIFEST_FORMAT = 'tidemark-backup-manifest';
export const MANIFEST_VERSION = 1;
export const STAR_FORMAT = 'tidemark-backup-star';
export const BACKUP_TYPES = ['full', 'incremental', 'differential', 'log', 'logical'] as const;
export type BackupType = (typeof BACKUP_TYPES)[number];
export const STAR_KINDS = ['standalone', 'pitr'] as const;
export type StarKind = (typeof STAR_KINDS)[number];

const JOB_RE = /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}[A-Za-z0-9_])?$/;
const ID_RE =
  /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-(.+)-(full|incremental|differential|log|logical)-([0-9a-f]{6})$/;

export const manifestKey = (id: string): string => `${id}/manifest.json`;
export const starKey = (id: string): string => `${id}/star.json`;

function invalid(what: string, context: Record<string, string> = {}): TidemarkError {
  return new TidemarkError(`backup manifest: ${what}`, { code: 'BACKUP_MANIFEST', retriable: false, context });
}

/** A new backup id; `rand` is 6 hex digits (the caller draws them: this module is pure). */
export function newBackupId(job: string, type: BackupType, startedAt: Date, rand: string): string {
  if (!JOB_RE.test(job))
    throw invalid(`job name '${job}' must be 1-64 letters, digits, '_' or '-' (not at either end)`);
  if (!/^[0-9a-f]{6}$/.test(rand)) throw invalid(`random suffix '${rand}' must be 6 lowercase hex digits`);
  const stamp = startedAt
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
  return `${stamp}-${job}-${type}-${rand}`;
}

/** The start time and type encoded in a backup id, or null for a key that is not a tidemark backup id. */
export function parseBackupId(id: string): { startedAt: Date; job: string; type: BackupType } | null {
  const m = ID_RE.exec(id);
  if (m === null) return null;
  const [, y, mo, d, h, mi, s, job, type] = m;
  const t = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(t) || !JOB_RE.test(job as string)) return null;
  return { startedAt: new Date(t), job: job as string, type: type as BackupType };
}

/** bigint ⇄ decimal string, Date ⇄ ISO 8601 UTC: zod codecs, so one schema both validates and converts. */
const decimal = z.codec(
  z.string().regex(/^\d+$/, 'a non-negative decimal integer (as a string)'),
  z.bigint().nonnegative(),
  {
    decode: (s) => BigInt(s),
    encode: (b) => b.toString(),
  },
);
const isoTime = z.codec(z.iso.datetime({ offset: false }), z.date(), {
  decode: (s) => new Date(s),
  encode: (d) => d.toISOString(),
});
const backupId = z.string().refine((s) => parseBackupId(s) !== null, 'a tidemark backup id');

const pieceSchema = z.object({
  key: z.string().min(1),
  size: decimal,
  sha256: z.string().regex(/^[0-9a-f]{64}$/, '64 lowercase hex digits'),
  chunks: z.number().int().nonnegative(),
});

/** What the pipeline puts here is opaque to the catalog; these three fields are always present. */
const encryptionSchema = z.looseObject({
  algorithm: z.string().min(1),
  wrappedKey: z.string().min(1),
  keyId: z.string().min(1),
});

const logSchema = z.object({
  /** Archive sequence number: consecutive numbers mean no gap between two log backups. */
  seq: decimal,
  binlogFile: z.string().min(1),
  startPos: decimal,
  endPos: decimal,
  firstGtid: z.string().nullable(),
  lastGtid: z.string().nullable(),
  /** Commit times of the first and last event group covered. */
  firstCommit: isoTime,
  lastCommit: isoTime,
});

export const manifestSchema = z
  .object({
    format: z.literal(MANIFEST_FORMAT),
    version: z.literal(MANIFEST_VERSION),
    id: backupId,
    job: z.string().regex(JOB_RE),
    type: z.enum(BACKUP_TYPES),
    parent: backupId.nullable(),
    chain: backupId,
    lsn: z.object({ from: decimal, to: decimal }).nullable(),
    gtid: z.string().nullable(),
    binlog: z.object({ file: z.string().min(1), position: decimal }).nullable(),
    log: logSchema.nullable(),
    pieces: z.array(pieceSchema),
    encryption: encryptionSchema.nullable(),
    startedAt: isoTime,
    endedAt: isoTime,
    tools: z.record(z.string(), z.string()),
  })
  .superRefine((m, ctx) => {
    const issue = (message: string): void => ctx.addIssue({ code: 'custom', message });
    const rooted = m.type === 'full' || m.type === 'logical' || m.type === 'log';
    if (rooted && m.parent !== null) issue(`a ${m.type} backup has no parent`);
    if (!rooted && m.parent === null) issue(`a ${m.type} backup needs a parent`);
    if ((m.type === 'full' || m.type === 'logical') && m.chain !== m.id)
      issue(`a ${m.type} backup starts its own chain (chain = id)`);
    const physical = m.type === 'full' || m.type === 'incremental' || m.type === 'differential';
    if (physical && m.lsn === null) issue(`a ${m.type} backup needs its LSN range`);
    if (m.type === 'log' && m.log === null) issue('a log backup needs its log range');
    if (m.lsn !== null && m.lsn.from > m.lsn.to) issue('lsn.from is after lsn.to');
    if (m.endedAt.getTime() < m.startedAt.getTime()) issue('endedAt is before startedAt');
    const keys = new Set<string>();
    for (const p of m.pieces) {
      if (!p.key.startsWith(`${m.id}/`) || p.key === manifestKey(m.id) || p.key === starKey(m.id)) {
        issue(`piece key '${p.key}' is not a piece under '${m.id}/'`);
      }
      if (keys.has(p.key)) issue(`piece key '${p.key}' is listed twice`);
      keys.add(p.key);
    }
    const parsed = parseBackupId(m.id);
    if (parsed !== null && (parsed.type !== m.type || parsed.job !== m.job))
      issue(`id '${m.id}' does not match job '${m.job}' and type '${m.type}'`);
  });

type Stored = z.output<typeof manifestSchema>;
export type Manifest = Omit<Stored, 'format' | 'version'>;
export type Piece = Stored['pieces'][number];
export type LogRange = NonNullable<Stored['log']>;
export type EncryptionHeader = NonNullable<Stored['encryption']>;

function describeIssues(err: z.ZodError): string {
  return err.issues.map((i) => (i.path.length > 0 ? `'${i.path.join('.')}': ${i.message}` : i.message)).join('; ');
}

function parseJson(bytes: Buffer | string, key: string, what: string): unknown {
  try {
    return JSON.parse(bytes.toString());
  } catch (err) {
    throw new TidemarkError(`backup ${what} '${key}' is not JSON`, {
      code: 'BACKUP_MANIFEST',
      cause: err,
      context: { key },
    });
  }
}

/** The JSON bytes stored under `<id>/manifest.json`. Validates first: an invalid manifest is never written. */
export function encodeManifest(m: Manifest): Buffer {
  const r = manifestSchema.safeEncode({ format: MANIFEST_FORMAT, version: MANIFEST_VERSION, ...m });
  if (!r.success) throw invalid(`refusing to write manifest '${m.id}': ${describeIssues(r.error)}`, { id: m.id });
  return Buffer.from(`${JSON.stringify(r.data, null, 2)}\n`);
}

/** Parses stored manifest bytes; `key` names the object in the error. */
export function decodeManifest(bytes: Buffer | string, key = 'manifest.json'): Manifest {
  const raw = parseJson(bytes, key, 'manifest');
  const fmt = (raw as { format?: unknown; version?: unknown } | null) ?? {};
  if (fmt.format === MANIFEST_FORMAT && typeof fmt.version === 'number' && fmt.version > MANIFEST_VERSION) {
    throw invalid(
      `'${key}' is manifest version ${fmt.version}; this tidemark reads up to ${MANIFEST_VERSION} — upgrade tidemark`,
      { key },
    );
  }
  const r = manifestSchema.safeParse(raw);
  if (!r.success) throw invalid(`'${key}' is not a valid manifest: ${describeIssues(r.error)}`, { key });
  const { format: _f, version: _v, ...m } = r.data;
  return m;
}

const starSchema = z.object({
  format: z.literal(STAR_FORMAT),
  version: z.literal(1),
  id: backupId,
  kind: z.enum(STAR_KINDS),
  note: z.string().max(1000),
  starredAt: isoTime,
});

export type Star = Omit<z.output<typeof starSchema>, 'format' | 'version'>;

export function encodeStar(s: Star): Buffer {
  const r = starSchema.safeEncode({ format: STAR_FORMAT, version: 1, ...s });
  if (!r.success) throw invalid(`refusing to write star of '${s.id}': ${describeIssues(r.error)}`, { id: s.id });
  return Buffer.from(`${JSON.stringify(r.data)}\n`);
}

export function decodeStar(bytes: Buffer | string, key = 'star.json'): Star {
  const r = starSchema.safeParse(parseJson(bytes, key, 'star'));
  if (!r.success) throw invalid(`'${key}' is not a valid star: ${describeIssues(r.error)}`, { key });
  const { format: _f, version: _v, ...s } = r.data;
  return s;
}

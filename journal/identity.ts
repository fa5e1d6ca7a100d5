/**
 * Journal identity: a small file `JOURNAL` in the journal directory, written once when the writer first opens the
 * directory (or, for a journal made before the file existed, on its next open), atomically and durably:
 *
 *   {"format":1,"id":"<random UUID>","created":"<ISO time>"}                                    a source journal
 *   {"format":1,"id":"…","created":"…","mirror":{"of":"<source journal id>","sourceEpoch":3}}    a mirror
 *   {"format":1,"id":"…","created":"…","branch":{"of":"<journal id>","atLsn":"812","epoch":2}}  a promoted mirror
 *
 * The id names this journal's LSN sequence: a new journal at the same place (deleted and recreated, restored from
 * elsewhere) gets a new id, so a standby never continues a copy of the old sequence with frames of a new one. A
 * mirror (a standby's copy that stores the source's frames at the source's LSNs) records the id of the journal it
 * mirrors, and refuses to continue from another, and the latest source truncation epoch it has reconciled
 * (journal/mirror.ts). `format` is the on-disk format of the journal; a newer one is refused.
 *
 * `branch` (branch.ts) marks a source journal that continues another one: a standby's mirror promoted after a
 * failover. Its frames up to `atLsn` are frames of journal `of`, at the same LSNs; `epoch` is the latest
 * truncation epoch this journal had recorded when it was promoted. atLsn is stored as a decimal string.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { CorruptionError, TidemarkError } from '../core/errors.ts';
import { writeFileDurable } from '../core/durable-file.ts';

export const IDENTITY_FILE = 'JOURNAL';
export const JOURNAL_FORMAT = 1;

export interface JournalIdentity {
  readonly format: number;
  readonly id: string;
  readonly created: string;
  /** Set for a mirror: the id of the source journal, and the source truncation epoch reconciled last. */
  readonly mirror?: { readonly of: string; readonly sourceEpoch: number };
  /** Set for a source journal that continues journal `of` (a promoted mirror): see the module comment. */
  readonly branch?: JournalBranch;
}

/** Where a promoted mirror's journal continues the journal it mirrored (branch.ts). */
export interface JournalBranch {
  /** Id of the journal continued. */
  readonly of: string;
  /** The last LSN shared with it: later frames are this journal's own. */
  readonly atLsn: bigint;
  /** The latest truncation epoch of this journal at promotion (adopting mirrors start from it). */
  readonly epoch: number;
}

/** The journal's identity, or null when the directory has no JOURNAL file (yet). */
export async function readIdentity(dir: string): Promise<JournalIdentity | null> {
  const file = join(dir, IDENTITY_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  let raw: {
    format?: unknown;
    id?: unknown;
    created?: unknown;
    mirror?: { of?: unknown; sourceEpoch?: unknown };
    branch?: { of?: unknown; atLsn?: unknown; epoch?: unknown };
  };
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CorruptionError(`${file}: not valid JSON`, { file }, err);
  }
  const m = raw?.mirror;
  const mirrorOk = m === undefined || (typeof m?.of === 'string' && Number.isInteger(m.sourceEpoch));
  const b = raw?.branch;
  const branchOk =
    b === undefined ||
    (typeof b?.of === 'string' &&
      b.of !== '' &&
      typeof b.atLsn === 'string' &&
      /^\d{1,20}$/.test(b.atLsn) &&
      Number.isInteger(b.epoch) &&
      (b.epoch as number) >= 0);
  if (!Number.isInteger(raw?.format) || typeof raw.id !== 'string' || raw.id === '' || !mirrorOk || !branchOk) {
    throw new CorruptionError(
      `${file}: expected {"format", "id", "created", optional "mirror": {"of", "sourceEpoch"}, ` +
        'optional "branch": {"of", "atLsn" (decimal string), "epoch"}}',
      { file },
    );
  }
  if ((raw.format as number) > JOURNAL_FORMAT) {
    throw new TidemarkError(
      `journal ${dir} has format ${raw.format}; this tidemark reads format ${JOURNAL_FORMAT} (upgrade tidemark)`,
      { code: 'JOURNAL_FORMAT', context: { dir } },
    );
  }
  const base = {
    format: raw.format as number,
    id: raw.id,
    created: typeof raw.created === 'string' ? raw.created : '',
  };
  return {
    ...base,
    ...(m ? { mirror: { of: m.of as string, sourceEpoch: m.sourceEpoch as number } } : {}),
    ...(b ? { branch: { of: b.of as string, atLsn: BigInt(b.atLsn as string), epoch: b.epoch as number } } : {}),
  };
}

/**
 * The identity of the journal at `dir`. A journal gets it when its writer first opens it: before that, this
 * throws JOURNAL_NO_IDENTITY (retriable: a shipper started before the capture's writer can try again).
 */
export async function journalIdentity(dir: string): Promise<JournalIdentity> {
  const id = await readIdentity(dir);
  if (id) return id;
  throw new TidemarkError(`journal ${dir} has no ${IDENTITY_FILE} file yet (its writer has not opened it)`, {
    code: 'JOURNAL_NO_IDENTITY',
    retriable: true,
    context: { dir },
  });
}

/** The JOURNAL file's text for `id` (branch.atLsn as a decimal string). */
export function formatIdentity(id: JournalIdentity): string {
  const { branch, ...rest } = id;
  const out = branch
    ? { ...rest, branch: { of: branch.of, atLsn: branch.atLsn.toString(), epoch: branch.epoch } }
    : rest;
  return `${JSON.stringify(out)}\n`;
}

export async function writeIdentity(dir: string, id: JournalIdentity): Promise<void> {
  await writeFileDurable(join(dir, IDENTITY_FILE), formatIdentity(id));
}

/** The mirror holds frames of journal `have` but was asked to continue from `want` (or is no mirror at all). */
export class JournalIdentityError extends TidemarkError {
  constructor(message: string, context: { dir: string; have: string | null; want: string }) {
    super(message, { code: 'JOURNAL_IDENTITY', retriable: false, context });
    this.name = 'JournalIdentityError';
  }
}

/**
 * Run by the writer on open, holding the lock: returns the identity, creating the file when it is missing.
 * `mirrorOf` (the source journal's id) makes a new journal a mirror and must match an existing mirror's source.
 */
export async function ensureIdentity(dir: string, mirrorOf: string | undefined, log: Logger): Promise<JournalIdentity> {
  const have = await readIdentity(dir);
  if (!have) {
    const id: JournalIdentity = {
      format: JOURNAL_FORMAT,
      id: randomUUID(),
      created: new Date().toISOString(),
      ...(mirrorOf === undefined ? {} : { mirror: { of: mirrorOf, sourceEpoch: 0 } }),
    };
    await writeIdentity(dir, id);
    log.info({ dir, id: id.id, mirrorOf: mirrorOf ?? null }, 'journal identity created');
    return id;
  }
  if (mirrorOf !== undefined && have.mirror?.of !== mirrorOf) {
    const why = have.mirror
      ? `it mirrors journal ${have.mirror.of}, not ${mirrorOf}: the source journal was replaced; rebaseline this standby`
      : `it is a source journal (id ${have.id}), not a mirror of ${mirrorOf}`;
    throw new JournalIdentityError(`journal identity changed: journal ${dir}: ${why}`, {
      dir,
      have: have.mirror?.of ?? null,
      want: mirrorOf,
    });
  }
  return have;
}

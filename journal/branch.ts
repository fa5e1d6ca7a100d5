/**
 * Journal lineage across a failover. A standby's mirror holds the primary's frames at the primary's LSNs; when the
 * standby is promoted its mirror becomes the new primary's SOURCE journal and continues the same LSN sequence, so
 * every other standby (its mirror) and every target (its applied LSN) keeps its position:
 *
 *   promoteMirror  the mirror is cut back to the branch point `atLsn` (what the new primary holds) and gets a new
 *                  identity: a source journal with `branch: {of: <the old journal's id>, atLsn, epoch}`
 *                  (identity.ts). A marker unit (a commit entry alone, whose position is where capture of the
 *                  promoted server starts) is appended at atLsn + 1: capture resumes from it (JournalSink.lastCommit).
 *   adoptBranch    a mirror of the old journal whose head is at or below atLsn holds only frames the new journal
 *                  also holds: it adopts the new journal (ship/mirror.ts, on the new primary's HELLO). One whose
 *                  head is above it holds errant frames (never on the new primary) and is refused, naming them.
 *   demoteToMirror the old primary's journal is cut back to atLsn (a truncation event: its readers start again) and
 *                  becomes a mirror of the new journal (failback, after its errant units were dealt with).
 *
 * `epoch` is the new journal's latest truncation epoch at promotion: its TRUNCATIONS file lists the cuts it made as
 * a mirror, which an adopting mirror must not reconcile again; mirrors adopt it as their reconciled source epoch.
 * Each step is safe to run again after a crash: it checks what is already done.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { type ErrorContext, TidemarkError } from '../core/errors.ts';
import type { CommitEntry } from '../record/record.ts';
import { decodeFrame, frameAtLsn, JournalSink } from './entries.ts';
import { IDENTITY_FILE, type JournalBranch, type JournalIdentity, readIdentity } from './identity.ts';
import { listSegments } from './segments.ts';
import { latestEpoch, readTruncations } from './truncations.ts';
import { JournalWriter } from './writer.ts';

export interface PromoteOptions {
  /** The branch point: the last LSN the new primary holds (a unit end at or below the mirror's durable LSN). */
  atLsn: bigint;
  /** The marker unit's commit entry, given the seq of the journal's last entry (0n for an empty journal). */
  marker: (lastSeq: bigint) => CommitEntry;
  log: Logger;
  /** Segment size for segments the promotion starts. Default 64 MiB. */
  segmentBytes?: number;
}

export interface PromoteResult {
  /** The new (source) journal's id. */
  readonly journalId: string;
  readonly branch: JournalBranch;
  /** LSN of the marker unit (atLsn + 1). */
  readonly markerLsn: bigint;
}

export interface DemoteOptions {
  /** The new primary's journal id: the journal becomes a mirror of it. */
  of: string;
  /** The new primary's branch (its identity's `branch`): `of` must be this journal's id. */
  branch: JournalBranch;
  log: Logger;
  segmentBytes?: number;
}

export type BranchDecision = { adopt: true } | { adopt: false; refuse: string } | null;

function lineageError(message: string, context: ErrorContext): TidemarkError {
  return new TidemarkError(message, { code: 'JOURNAL_LINEAGE', retriable: false, context });
}

function openWriter(dir: string, mirrorOf: string | undefined, o: { log: Logger; segmentBytes?: number | undefined }) {
  return JournalWriter.open({
    dir,
    fsync: 'transaction',
    groupCommitMs: 0,
    segmentBytes: o.segmentBytes ?? 64 << 20,
    log: o.log,
    ...(mirrorOf === undefined ? {} : { mirrorOf }),
  });
}

/** Cuts the open writer back to `atLsn`, which must end a unit at or below its head. Returns the cut, if any. */
async function cutBackTo(w: JournalWriter, atLsn: bigint, log: Logger, why: string): Promise<bigint | null> {
  if (atLsn >= w.headLsn) return null;
  const f = await frameAtLsn(w.dir, atLsn);
  if (f && !f.endOfUnit) {
    throw lineageError(
      `journal ${w.dir}: LSN ${atLsn} does not end a unit (its durable LSN is ${w.durableLsn}): cannot cut back to it`,
      { dir: w.dir, atLsn, durableLsn: w.durableLsn },
    );
  }
  log.warn(
    { dir: w.dir, toLsn: String(atLsn), headLsn: String(w.headLsn) },
    `journal lineage: cutting ${w.dir} back from LSN ${w.headLsn} to ${atLsn} (${why})`,
  );
  await w.truncateTo(atLsn);
  if (w.headLsn !== atLsn) {
    throw new TidemarkError(`journal ${w.dir}: cut back to LSN ${atLsn} but its head is ${w.headLsn}`, {
      code: 'INTERNAL',
    });
  }
  return atLsn;
}

/** Appends the marker unit (a commit entry alone) and waits until it is durable; returns its LSN. */
async function appendMarker(w: JournalWriter, marker: PromoteOptions['marker']): Promise<bigint> {
  const sink = new JournalSink(w);
  const last = sink.lastCommit();
  if (!last && w.headLsn > 0n) {
    throw lineageError(
      `journal ${w.dir} holds no complete unit (it starts after LSN ${w.headLsn}): the seq to continue from is ` +
        'unknown; rebaseline instead',
      { dir: w.dir },
    );
  }
  const entry = marker(last?.seq ?? 0n);
  if (entry.kind !== 'commit') {
    throw new TidemarkError(`promotion marker must be a commit entry, not ${entry.kind}`, { code: 'INTERNAL' });
  }
  await sink.commit(entry);
  return sink.lsn;
}

/**
 * Makes the mirror journal at `dir` the new primary's source journal, continuing its LSNs from `atLsn` (see the
 * module comment). The mirror's receiver must be stopped (the writer's lock is taken). Run again after a crash,
 * it finishes what is left (the marker) or returns the earlier result.
 */
export async function promoteMirror(dir: string, opts: PromoteOptions): Promise<PromoteResult> {
  const have = await readIdentity(dir);
  if (!have) {
    throw lineageError(`journal ${dir} has no ${IDENTITY_FILE} file: there is no mirror to promote`, { dir });
  }
  if (!have.mirror) {
    if (have.branch) return finishPromotion(dir, have, have.branch, opts);
    throw lineageError(
      `journal ${dir} is a source journal (id ${have.id}), not a mirror: there is nothing to promote`,
      {
        dir,
      },
    );
  }
  const of = have.mirror.of;
  const w = await openWriter(dir, of, opts);
  try {
    // The writer recovered the mirror on open: an unfinished unit is gone and its head ends a unit.
    if (opts.atLsn > w.durableLsn) {
      throw lineageError(
        `cannot promote journal ${dir} at LSN ${opts.atLsn}: the mirror is durable only up to LSN ${w.durableLsn} ` +
          '(it does not hold the branch point)',
        { dir, atLsn: opts.atLsn, durableLsn: w.durableLsn },
      );
    }
    await cutBackTo(w, opts.atLsn, opts.log, 'promotion: frames past the branch point never reached the target');
    const branch: JournalBranch = { of, atLsn: opts.atLsn, epoch: latestEpoch(readTruncations(dir)) };
    const ident: JournalIdentity = {
      format: have.format,
      id: randomUUID(),
      created: new Date().toISOString(),
      branch,
    };
    await w.replaceIdentity(ident);
    opts.log.warn(
      { dir, journalId: ident.id, branchOf: of, atLsn: String(branch.atLsn), epoch: branch.epoch },
      `journal lineage: the mirror ${dir} of journal ${of} is now the source journal ${ident.id}, continuing it ` +
        `after LSN ${branch.atLsn}`,
    );
    const markerLsn = await appendMarker(w, opts.marker);
    return { journalId: ident.id, branch, markerLsn };
  } finally {
    await w.close();
  }
}

/** promoteMirror on a journal already promoted: the marker is there (done), or is appended now (a crash before). */
async function finishPromotion(
  dir: string,
  have: JournalIdentity,
  branch: JournalBranch,
  opts: PromoteOptions,
): Promise<PromoteResult> {
  if (branch.atLsn !== opts.atLsn) {
    throw lineageError(
      `journal ${dir} was promoted already, branching from ${branch.of} at LSN ${branch.atLsn}, not ${opts.atLsn}`,
      { dir, atLsn: opts.atLsn, branchLsn: branch.atLsn },
    );
  }
  const done = { journalId: have.id, branch, markerLsn: branch.atLsn + 1n };
  const oldest = (await listSegments(dir))[0];
  if (oldest !== undefined && oldest > branch.atLsn + 1n) return done; // retention is past the marker already
  const next = await frameAtLsn(dir, branch.atLsn + 1n);
  if (next) {
    if (next.endOfUnit && decodeFrame(next).entry.kind === 'commit') return done;
    throw lineageError(
      `journal ${dir} was promoted at LSN ${branch.atLsn} but LSN ${branch.atLsn + 1n} is not its promotion marker ` +
        '(a commit entry alone)',
      { dir, atLsn: branch.atLsn },
    );
  }
  const w = await openWriter(dir, undefined, opts);
  try {
    if (w.headLsn !== branch.atLsn) {
      throw lineageError(
        `journal ${dir} was promoted at LSN ${branch.atLsn} but now ends at LSN ${w.headLsn}, without its marker`,
        { dir, atLsn: branch.atLsn, headLsn: w.headLsn },
      );
    }
    opts.log.warn({ dir, atLsn: String(branch.atLsn) }, 'journal lineage: appending the missing promotion marker');
    return { ...done, markerLsn: await appendMarker(w, opts.marker) };
  } finally {
    await w.close();
  }
}

/**
 * Makes the old primary's source journal at `dir` a mirror of the new primary's journal `of`, which continued it
 * after `branch.atLsn`: frames above atLsn (errant: never on the new primary) are cut, with a truncation event
 * so that its readers start again. `cut` is the LSN cut back to, or null when nothing was above it (or the
 * journal is a mirror of `of` already).
 */
export async function demoteToMirror(dir: string, opts: DemoteOptions): Promise<{ cut: bigint | null }> {
  const { of, branch, log } = opts;
  const have = await readIdentity(dir);
  if (!have) throw lineageError(`journal ${dir} has no ${IDENTITY_FILE} file: there is no journal to demote`, { dir });
  if (have.mirror) {
    if (have.mirror.of === of) return { cut: null };
    throw lineageError(`journal ${dir} is a mirror of journal ${have.mirror.of} already, not of ${of}`, { dir, of });
  }
  if (have.id !== branch.of) {
    throw lineageError(`journal ${dir} is ${have.id}, not the journal ${branch.of} the new primary continued`, {
      dir,
      have: have.id,
      want: branch.of,
    });
  }
  const w = await openWriter(dir, undefined, opts);
  try {
    if (w.headLsn < branch.atLsn) {
      throw lineageError(
        `journal ${dir} ends at LSN ${w.headLsn}, below LSN ${branch.atLsn} where the new primary's journal ${of} ` +
          `branched from it: it lacks frames ${w.headLsn + 1n}..${branch.atLsn} the new primary has; rebaseline ` +
          'this site instead',
        { dir, headLsn: w.headLsn, atLsn: branch.atLsn },
      );
    }
    const cut = await cutBackTo(w, branch.atLsn, log, `failback: errant frames the new primary ${of} never had`);
    await w.replaceIdentity({
      format: have.format,
      id: have.id,
      created: have.created,
      mirror: { of, sourceEpoch: branch.epoch },
    });
    log.warn(
      { dir, journalId: have.id, mirrorOf: of, atLsn: String(branch.atLsn), cut: cut === null ? null : String(cut) },
      `journal lineage: the journal ${dir} is now a mirror of ${of} from LSN ${branch.atLsn}`,
    );
    return { cut };
  } finally {
    await w.close();
  }
}

/**
 * A mirror (identity `have`, head LSN `mirrorHead`) meets a HELLO of a journal it does not mirror: null when that
 * journal does not continue the mirrored one (not a branch case: refuse as an identity change); adopt when the
 * mirror holds nothing past the branch point; otherwise refuse, naming the errant frames.
 */
export function adoptBranch(
  have: JournalIdentity,
  hello: { readonly journalId: string; readonly branch?: JournalBranch | undefined },
  mirrorHead: bigint,
  dir = 'journal',
): BranchDecision {
  const b = hello.branch;
  const m = have.mirror;
  if (!b || !m || m.of === hello.journalId || m.of !== b.of) return null;
  if (mirrorHead <= b.atLsn) return { adopt: true };
  return {
    adopt: false,
    refuse:
      `the mirror ${dir} holds LSNs up to ${mirrorHead}, past LSN ${b.atLsn} where the new primary's journal ` +
      `${hello.journalId} branched from ${b.of}: frames ${b.atLsn + 1n}..${mirrorHead} never reached the new ` +
      'primary (errant); run tidemark failback for this site',
  };
}

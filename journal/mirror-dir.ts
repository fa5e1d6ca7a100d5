/** Where journals live at the sites: a standby keeps the mirror of source S's journal under `<journal_dir>/<S>`. */
import { join } from 'node:path';

/** The mirror journal a standby keeps of a source: `<journal_dir>/<source>`. */
export function mirrorDir(sourceName: string, s: { journal_dir: string }): string {
  return join(s.journal_dir, sourceName);
}

/** The journal a target is applied from: the primary's, or the mirror at its standby site. */
export function journalDirOf(
  config: {
    journal: { dir: string };
    source: { name: string };
    standbys: readonly { name: string; journal_dir: string }[];
  },
  target: { site?: string | undefined },
): string {
  const s = config.standbys.find((x) => x.name === target.site);
  return s ? mirrorDir(config.source.name, s) : config.journal.dir;
}

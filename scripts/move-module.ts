/**
 * Moves .ts modules and rewrites every relative import of them (and the moved files' own imports), for the folder
 * moves of issue #12:
 *
 *   node scripts/move-module.ts record/errors.ts=core/errors.ts record/log.ts=core/log.ts
 *   node scripts/move-module.ts ship/journal/=journal/   # a folder: every tracked file under it
 *
 * A source path that no longer exists is not moved, only its importers rewritten: after merging a branch written
 * against the old paths, the same command fixes the imports that came in with the merge. Uses `git mv` and
 * `git ls-files`; run from the repository root; prints how many files it rewrote.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';

const posix = (p: string) => p.split(sep).join('/');

/** old path → new path for every file, folders (a trailing '/') expanded over `files`. */
export function expandMoves(pairs: readonly string[], files: readonly string[]): Map<string, string> {
  const moves = new Map<string, string>();
  for (const pair of pairs) {
    const [from, to] = pair.split('=');
    if (!from || !to) throw new Error(`not OLD=NEW: ${pair}`);
    if (from.endsWith('/')) {
      for (const f of files) if (f.startsWith(from)) moves.set(f, `${to.replace(/\/?$/, '/')}${f.slice(from.length)}`);
    } else {
      moves.set(posix(normalize(from)), posix(normalize(to)));
    }
  }
  return moves;
}

/** `text` of the file now at `newFile` (formerly `oldFile`) with its relative imports pointed at the new places. */
export function rewriteImports(text: string, oldFile: string, newFile: string, moves: ReadonlyMap<string, string>) {
  const re = /((?:from|import)\s*\(?\s*)(['"])(\.{1,2}\/[^'"]+)\2/g;
  return text.replace(re, (m, pre: string, q: string, spec: string) => {
    const target = posix(normalize(join(dirname(oldFile), spec)));
    const moved = moves.get(target) ?? target;
    if (moved === target && oldFile === newFile) return m;
    let rel = posix(relative(dirname(newFile), moved));
    if (!rel.startsWith('.')) rel = `./${rel}`;
    return `${pre}${q}${rel}${q}`;
  });
}

function main(): void {
  const files = execFileSync('git', ['ls-files', '*.ts'], { encoding: 'utf8' }).trim().split('\n');
  const moves = expandMoves(process.argv.slice(2), files);
  for (const [from, to] of moves) {
    if (!existsSync(from)) continue;
    mkdirSync(dirname(to), { recursive: true });
    execFileSync('git', ['mv', from, to]);
  }
  let changed = 0;
  for (const f of files) {
    const now = existsSync(f) ? f : (moves.get(f) ?? f);
    if (!existsSync(now)) continue;
    const text = readFileSync(now, 'utf8');
    const out = rewriteImports(text, f, now, moves);
    if (out !== text) {
      writeFileSync(now, out);
      changed++;
    }
  }
  console.log(`move-module: ${moves.size} moves, ${changed} files rewritten`);
}

if (process.argv[1] && normalize(process.argv[1]).endsWith(join('scripts', 'move-module.ts'))) main();

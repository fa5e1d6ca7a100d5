/**
 * The import check (issue #12): every import points down a floor, goes through a package's public face where it
 * has one, and no two folders import each other. Run by compose/local/test.sh (`node scripts/check-imports.ts`);
 * exits 1 and prints one line per offending import. Pure apart from main(): checkImports() takes the files.
 *
 * Floors, bottom-up (a file may import its own floor's folder and any folder below; ARCHITECTURE.md):
 *
 *   0 core/          errors, backoff, durable files, logger, secrets
 *   1 record/        the change-record model, positions, codec
 *   2 journal/       the durable journal (public face: journal/index.ts)
 *   3 mysql/         the one MySQL/MariaDB client layer: sessions + TLS, errno table, SQL quoting, type families
 *   3 engine/        the engine seam: SourceAdapter / TargetAdapter, the registry by kind (engine/README.md)
 *   3 postgres/      the one PostgreSQL client layer (issue #14)
 *   4 capture/ apply/   one engine each way; siblings do not import each other
 *   5 ship/          the transport-neutral link: frames, mirror sink, session loop, ack coalescing, link status
 *   6 ship/tcp/ ship/kafka/ ship/redis/   the transports (public faces: index.ts); siblings do not import each other
 *   7 rollback/      rewind, forward, undo, the rollback index (public face: rollback/index/index.ts)
 *   8 failover/      monitor, witness, fencing, takeover, failback
 *   8 backup/        scheduled backups: pipeline, stores, catalog, retention, restore (issue #13)
 *   9 config/        load the YAML, compose the sections the components own, secrets, site cross-checks
 *  10 node/          the `tidemark run` process: supervisor, loops, link state, takeover bindings, state files
 *  11 cli            argv → options → one call per command, exit codes
 *  12 test/ bench/   may import anything (past faces too); only unit tests beside the code import them
 *
 * The runtime (node/) reaches a database engine only through the engine seam (engine/, config/engines.ts): an
 * import of mysql/, postgres/, capture/ or apply/ from node/ fails (ABOVE_SEAM).
 *
 * Unit tests (*.test.ts) may reach past a face (they test the inside) and import test/ fixtures; every other
 * rule holds for them too.
 *
 * A folder is in the floor of its longest listed prefix (ship/tcp/x.ts: floor 6, not 5 as ship/x.ts).
 * Files in no listed folder (vitest.config.ts, scripts/) are not checked, and importing a non-.ts file
 * (package.json) is not checked.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Floor {
  readonly prefix: string;
  readonly floor: number;
}

export const FLOORS: readonly Floor[] = [
  { prefix: 'core', floor: 0 },
  { prefix: 'record', floor: 1 },
  { prefix: 'journal', floor: 2 },
  { prefix: 'mysql', floor: 3 },
  { prefix: 'engine', floor: 3 },
  { prefix: 'postgres', floor: 3 },
  { prefix: 'capture', floor: 4 },
  { prefix: 'apply', floor: 4 },
  { prefix: 'ship', floor: 5 },
  { prefix: 'ship/tcp', floor: 6 },
  { prefix: 'ship/kafka', floor: 6 },
  { prefix: 'ship/redis', floor: 6 },
  { prefix: 'rollback', floor: 7 },
  { prefix: 'failover', floor: 8 },
  { prefix: 'backup', floor: 8 },
  { prefix: 'config', floor: 9 },
  { prefix: 'node', floor: 10 },
  { prefix: 'cli', floor: 11 },
  { prefix: 'test', floor: 12 },
  { prefix: 'bench', floor: 12 },
];

/** test/ and bench/: they may import anything, past faces too, and unit tests (*.test.ts) may import them. */
export const TOOLS_FLOOR = 12;

/**
 * Folder cycles allowed: none. (A cycle is allowed only if every folder in it is listed together here; the one the
 * runtime had while it lived under the command line was removed when it moved to node/.)
 */
export const KNOWN_CYCLES: readonly (readonly string[])[] = [];

/**
 * The engine seam (engine/README.md): the runtime reaches a database engine only through its adapters
 * (engine/, config/engines.ts), never an engine's own folders — so a second engine never forks it. Each entry:
 * the folder above the seam, and the engine folders it must not import.
 */
export const ABOVE_SEAM: readonly { readonly folder: string; readonly engines: readonly string[] }[] = [
  { folder: 'node', engines: ['mysql', 'postgres', 'capture', 'apply'] },
];

/** Folders whose files others import only through `<folder>/index.ts`. Found in the tree: every index.ts. */
export function facesOf(paths: Iterable<string>): Set<string> {
  const faces = new Set<string>();
  for (const p of paths) if (p.endsWith('/index.ts')) faces.add(dirname(p));
  return faces;
}

export interface Violation {
  readonly file: string;
  readonly target: string;
  readonly rule: 'up' | 'sideways' | 'face' | 'cycle' | 'seam';
  readonly message: string;
}

/** The specifiers of a file's relative imports and re-exports (static, side-effect and dynamic import()). */
export function importsOf(text: string): string[] {
  const out: string[] = [];
  const patterns = [
    /^[ \t]*(?:import|export)\s[^'";]*?\sfrom\s*['"]([^'"]+)['"]/gm,
    /^[ \t]*import\s*['"]([^'"]+)['"]/gm,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) if (m[1]?.startsWith('.')) out.push(m[1]);
  return out;
}

function floorOf(file: string, floors: readonly Floor[]): Floor | null {
  let best: Floor | null = null;
  for (const f of floors) {
    if ((file === f.prefix || file.startsWith(`${f.prefix}/`)) && (!best || f.prefix.length > best.prefix.length)) {
      best = f;
    }
  }
  return best;
}

function inside(file: string, dir: string): boolean {
  return file.startsWith(`${dir}/`);
}

/** Strongly connected components of more than one node (Tarjan), each sorted. */
function cycles(graph: Map<string, Set<string>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}

/** The shortest way round from the first folder of a cycle (breadth-first within it), start repeated at the end. */
function shortestLoop(graph: Map<string, Set<string>>, scc: readonly string[]): string[] {
  const start = scc[0]!;
  const prev = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of [...(graph.get(v) ?? [])].sort()) {
      if (!scc.includes(w)) continue;
      if (w === start) {
        const path: string[] = [];
        for (let u = v; u !== start; u = prev.get(u)!) path.unshift(u);
        return [start, ...path, start];
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [...scc, start];
}

export interface CheckOptions {
  readonly floors?: readonly Floor[];
  readonly knownCycles?: readonly (readonly string[])[];
  readonly aboveSeam?: typeof ABOVE_SEAM;
}

/**
 * Checks `files` (repository-relative path with '/' → text). Test files (`*.test.ts`) count for the floor and face
 * rules, not for folder cycles (a test is a leaf: nothing imports it); neither do test/ and bench/.
 */
export function checkImports(files: ReadonlyMap<string, string>, o: CheckOptions = {}): Violation[] {
  const floors = o.floors ?? FLOORS;
  const known = (o.knownCycles ?? KNOWN_CYCLES).map((c) => [...c].sort().join(' '));
  const faces = facesOf(files.keys());
  const graph = new Map<string, Set<string>>();
  const out: Violation[] = [];
  for (const [file, text] of files) {
    const from = floorOf(file, floors);
    if (!from) continue;
    for (const spec of importsOf(text)) {
      const target = normalize(join(dirname(file), spec))
        .split(sep)
        .join('/');
      if (!target.endsWith('.ts')) continue;
      const to = floorOf(target, floors);
      if (!to) continue;
      const tool = from.floor === TOOLS_FLOOR || file.endsWith('.test.ts');
      if (to.floor === TOOLS_FLOOR && tool) {
        // test/ and bench/ share fixtures; a unit test beside the code may use them too.
      } else if (to.floor > from.floor) {
        out.push({
          file,
          target,
          rule: 'up',
          message: `${file} imports ${target}: ${to.prefix}/ (floor ${to.floor}) is above ${from.prefix}/ (floor ${from.floor})`,
        });
      } else if (to.floor === from.floor && to.prefix !== from.prefix && !inside(to.prefix, from.prefix)) {
        out.push({
          file,
          target,
          rule: 'sideways',
          message: `${file} imports ${target}: ${from.prefix}/ and ${to.prefix}/ share floor ${from.floor} and must not import each other`,
        });
      }
      for (const seam of o.aboveSeam ?? ABOVE_SEAM) {
        const engine = seam.engines.find((e) => target === e || inside(target, e));
        if (!tool && inside(file, seam.folder) && engine) {
          out.push({
            file,
            target,
            rule: 'seam',
            message: `${file} imports ${target}: ${seam.folder}/ reaches engines only through their adapters (engine/, config/engines.ts), not ${engine}/`,
          });
        }
      }
      for (const face of tool ? [] : faces) {
        if (inside(target, face) && target !== `${face}/index.ts` && !inside(file, face)) {
          out.push({
            file,
            target,
            rule: 'face',
            message: `${file} imports ${target} past the public face of ${face}/: import ${face}/index.ts`,
          });
        }
      }
      const a = dirname(file);
      const b = dirname(target);
      if (a !== b && !tool) {
        if (!graph.has(a)) graph.set(a, new Set());
        graph.get(a)!.add(b);
      }
    }
  }
  for (const scc of cycles(graph)) {
    if (known.includes(scc.join(' '))) continue;
    const loop = shortestLoop(graph, scc);
    out.push({
      file: scc[0]!,
      target: scc[1]!,
      rule: 'cycle',
      message: `import cycle between folders: ${loop.join(' → ')}${scc.length > loop.length - 1 ? ` (${scc.length} folders in all: ${scc.join(', ')})` : ''}`,
    });
  }
  return out;
}

const SKIP_DIRS = new Set(['node_modules', '.git', '.tools', '.run', 'coverage', 'tidemark-data']);

/** Every .ts file under `root` (repository-relative, '/'), skipping dependencies and state directories. */
export function listTsFiles(root: string, dir = root): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) {
      if (!SKIP_DIRS.has(e.name)) out.push(...listTsFiles(root, join(dir, e.name)));
    } else if (e.isFile() && e.name.endsWith('.ts')) {
      out.push(relative(root, join(dir, e.name)).split(sep).join('/'));
    }
  }
  return out;
}

function main(): void {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const files = new Map(listTsFiles(root).map((f) => [f, readFileSync(join(root, f), 'utf8')] as const));
  const violations = checkImports(files);
  for (const v of violations) console.log(`${v.rule}: ${v.message}`);
  if (violations.length > 0) {
    console.log(`check-imports: ${violations.length} imports break the floors (scripts/check-imports.ts)`);
    process.exit(1);
  }
  console.log(`check-imports: ${files.size} files, every import points down a floor, through the faces, no cycle`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();

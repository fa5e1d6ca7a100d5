/**
 * The engine registry: which adapter serves a `source.kind` / `targets[].kind`. The built-in engines (MySQL) are
 * registered by config/engines.ts, the one module that knows them; a test registers its own (the contract test's
 * toy engine). The config loader validates each section with the schema of the adapter its kind names.
 */
import { ConfigError } from '../core/errors.ts';
import type { SourceAdapter, SourceSection } from './source.ts';
import type { TargetAdapter, TargetSection } from './target.ts';

/** The kind a section without `kind:` has: every config written before the seam existed is MySQL. */
export const DEFAULT_KIND = 'mysql';

const sources = new Map<string, SourceAdapter>();
const targets = new Map<string, TargetAdapter>();

function add<A extends { kind: string }>(map: Map<string, A>, a: A, what: string): void {
  const had = map.get(a.kind);
  if (had !== undefined && had !== a) throw new Error(`a ${what} adapter for kind "${a.kind}" is already registered`);
  map.set(a.kind, a);
}

/** Registers an engine: its source adapter, its target adapter, or both (registering one object again is a no-op). */
export function registerEngine(e: {
  // biome-ignore lint/suspicious/noExplicitAny: adapters are stored by kind; each checks its own section type
  source?: SourceAdapter<any>;
  // biome-ignore lint/suspicious/noExplicitAny: as above
  target?: TargetAdapter<any>;
}): void {
  if (e.source) add(sources, e.source as SourceAdapter, 'source');
  if (e.target) add(targets, e.target as TargetAdapter, 'target');
}

/** Removes an engine registered under `kind` (tests that register a toy engine clean up with it). */
export function unregisterEngine(kind: string): void {
  sources.delete(kind);
  targets.delete(kind);
}

export function sourceKinds(): string[] {
  return [...sources.keys()].sort();
}

export function targetKinds(): string[] {
  return [...targets.keys()].sort();
}

function unknownKind(key: string, kind: string, known: string[]): ConfigError {
  return new ConfigError(`${key}: unknown engine "${kind}" (known: ${known.join(', ') || 'none'})`, { key, kind });
}

/** The source adapter for `kind` (absent: MySQL); `key` names the config key in the error for an unknown kind. */
export function sourceAdapterOf(kind: string | undefined, key = 'source.kind'): SourceAdapter {
  const k = kind ?? DEFAULT_KIND;
  const a = sources.get(k);
  if (!a) throw unknownKind(key, k, sourceKinds());
  return a;
}

export function targetAdapterOf(kind: string | undefined, key = 'targets[].kind'): TargetAdapter {
  const k = kind ?? DEFAULT_KIND;
  const a = targets.get(k);
  if (!a) throw unknownKind(key, k, targetKinds());
  return a;
}

/**
 * Refuses a target whose engine lacks an optional capability (`rewind`: rewind/forward/undo/skip; `takeover`:
 * failover), naming the target, its kind and what needs it. A kind nobody registered is left to the caller's own
 * checks (the config loader has refused unknown kinds already).
 */
export function requireCapability(
  t: { readonly name: string; readonly kind?: string | undefined },
  capability: 'rewind' | 'takeover',
  what: string,
): void {
  const kind = t.kind ?? DEFAULT_KIND;
  const a = targets.get(kind);
  if (a && a[capability] === undefined) {
    throw new ConfigError(
      `target ${t.name}: its engine "${kind}" has no ${capability} capability, which ${what} needs`,
      {
        target: t.name,
        kind,
      },
    );
  }
}

/** The adapter serving a loaded source section. */
export function sourceAdapter(s: SourceSection): SourceAdapter {
  return sourceAdapterOf(s.kind);
}

/** The adapter serving a loaded target section. */
export function targetAdapter(t: TargetSection): TargetAdapter {
  return targetAdapterOf(t.kind);
}

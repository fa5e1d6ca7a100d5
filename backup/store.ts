/**
 * The backup store seam (issue #13): where backup pieces and manifests live. The store is the truth — the catalog
 * (backup/catalog) is a cache rebuilt by listing it. Two implementations: a directory (backup/store/dir.ts) and an
 * S3-compatible bucket (backup/store/s3.ts). Keys are '/'-separated relative paths (`<backupId>/piece-000001`,
 * `<backupId>/manifest.json`); a store never interprets them.
 *
 * Contract every implementation keeps (backup/store/contract.ts tests it):
 *   - put() streams: it never buffers a whole object in memory; an object appears under its key only once complete
 *     (a crash mid-put leaves no object, or at most an orphan the catalog collects — never a short object under
 *     the key).
 *   - putIfAbsent() writes only if nothing is under the key (manifests are immutable); returns false if something was.
 *   - get() streams the object (a byte range optional); a missing key is a TidemarkError with code 'IO' and
 *     context { key }.
 *   - list(prefix) yields every key under the prefix with its size, in key order.
 *   - delete() of a missing key is not an error.
 */
import type { Readable } from 'node:stream';

export interface StoredObject {
  readonly key: string;
  readonly size: bigint;
}

export interface GetRange {
  /** First byte (inclusive). */
  readonly start: bigint;
  /** Last byte (inclusive); to the end when absent. */
  readonly end?: bigint;
}

export interface BackupStore {
  /** A name for messages and logs (`dir:/srv/backups`, `s3://bucket/prefix`): never a secret. */
  readonly name: string;
  put(key: string, body: Readable, opts?: { readonly signal?: AbortSignal }): Promise<StoredObject>;
  putIfAbsent(key: string, body: Buffer): Promise<boolean>;
  get(key: string, range?: GetRange): Promise<Readable>;
  head(key: string): Promise<StoredObject | null>;
  list(prefix: string): AsyncIterable<StoredObject>;
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}

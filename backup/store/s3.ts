/**
 * The S3-compatible backup store (@aws-sdk/client-s3; tests and the demo run versitygw locally, see
 * compose/local/versitygw.sh). put() streams through lib-storage's `Upload`: the body is cut into parts of
 * `partSize` and at most `queueSize` parts are in flight, so memory stays at queueSize × partSize whatever the
 * piece size; a body smaller than one part goes as a single PutObject. S3 makes an object visible only when its
 * PutObject or CompleteMultipartUpload succeeds, so a failed or aborted put leaves nothing under the key (the
 * multipart upload is aborted; a crash can leave an incomplete upload, which a bucket lifecycle rule
 * `AbortIncompleteMultipartUpload` removes — it is never listed as an object). putIfAbsent() is a PutObject with
 * `If-None-Match: *`: the server refuses (412) when the key exists, atomically.
 *
 * Credentials come from the config or, when it has none, from the AWS SDK's default chain (AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY, a profile, an instance role); they are never logged: the secret is a non-enumerable
 * property and the store's name carries only the bucket and prefix.
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable } from 'node:stream';
import { TidemarkError } from '../../core/errors.ts';
import type { BackupStore, GetRange, StoredObject } from '../store.ts';
import { checkKey, checkPrefix, missingKey } from './common.ts';
import { s3Error } from './s3-errors.ts';

export interface S3StoreOptions {
  /** `http://127.0.0.1:7300`; absent: AWS's own endpoint for the region. */
  readonly endpoint?: string;
  readonly region: string;
  readonly bucket: string;
  /** Prepended to every key (`tidemark/site-a/`); '' for none. */
  readonly prefix?: string;
  /** Path-style URLs (`endpoint/bucket/key`): needed by most self-hosted servers (versitygw, Ceph). */
  readonly forcePathStyle?: boolean;
  /** From the config; absent: the AWS SDK's default chain (environment, profile, instance role). */
  readonly credentials?: {
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
    readonly sessionToken?: string;
  };
  /** Multipart part size, default 8 MiB (S3's minimum is 5 MiB). */
  readonly partSize?: number;
  /** Parts in flight per put, default 2: memory per put is about queueSize × partSize. */
  readonly queueSize?: number;
  /** SDK attempts per request for retriable failures, default 3. */
  readonly maxAttempts?: number;
}

const MIN_PART = 5 << 20;

export class S3Store implements BackupStore {
  readonly name: string;
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #partSize: number;
  readonly #queueSize: number;

  constructor(o: S3StoreOptions) {
    const prefix = o.prefix ?? '';
    checkPrefix(prefix);
    if (prefix !== '' && !prefix.endsWith('/')) {
      throw new TidemarkError(`backup store prefix '${prefix}' must end with '/'`, {
        code: 'CONFIG',
        context: { prefix },
      });
    }
    this.#partSize = o.partSize ?? 8 << 20;
    if (this.#partSize < MIN_PART) {
      throw new TidemarkError(`backup store part size ${this.#partSize} is below S3's minimum of 5 MiB`, {
        code: 'CONFIG',
      });
    }
    this.#queueSize = Math.max(1, o.queueSize ?? 2);
    this.#bucket = o.bucket;
    this.#prefix = prefix;
    this.name = `s3://${o.bucket}/${prefix}`;
    const cfg: S3ClientConfig = {
      region: o.region,
      forcePathStyle: o.forcePathStyle ?? false,
      maxAttempts: o.maxAttempts ?? 3,
    };
    if (o.endpoint !== undefined) cfg.endpoint = o.endpoint;
    if (o.credentials !== undefined) {
      const c = o.credentials;
      const creds = { accessKeyId: c.accessKeyId };
      // Non-enumerable: a logged or serialised config never shows the secret.
      Object.defineProperty(creds, 'secretAccessKey', { value: c.secretAccessKey, enumerable: false });
      if (c.sessionToken !== undefined)
        Object.defineProperty(creds, 'sessionToken', { value: c.sessionToken, enumerable: false });
      cfg.credentials = creds as { accessKeyId: string; secretAccessKey: string };
    }
    this.#client = new S3Client(cfg);
  }

  /**
   * A store whose bucket answers: HeadBucket first, so a missing bucket or wrong credentials are named at start
   * (a HEAD of a missing key and of a missing bucket look the same: 404 without a body).
   */
  static async open(o: S3StoreOptions): Promise<S3Store> {
    const s = new S3Store(o);
    try {
      await s.#client.send(new HeadBucketCommand({ Bucket: o.bucket }));
    } catch (err) {
      s.#client.destroy();
      const e = status(err) === 404 ? Object.assign(err as object, { name: 'NoSuchBucket' }) : err;
      throw s3Error(s.name, 'open', '', e);
    }
    return s;
  }

  #key(key: string): string {
    checkKey(key);
    return `${this.#prefix}${key}`;
  }

  async put(key: string, body: Readable, opts: { readonly signal?: AbortSignal } = {}): Promise<StoredObject> {
    const full = this.#key(key);
    let size = 0n;
    // Counted on the way through; an error of `body` ends the generator and so fails the upload.
    const counted = Readable.from(
      (async function* () {
        for await (const b of body as AsyncIterable<Buffer>) {
          size += BigInt(b.length);
          yield b;
        }
      })(),
      { objectMode: false },
    );
    const ac = new AbortController();
    const upload = new Upload({
      client: this.#client,
      params: { Bucket: this.#bucket, Key: full, Body: counted },
      partSize: this.#partSize,
      queueSize: this.#queueSize,
      leavePartsOnError: false,
      abortController: ac,
    });
    const onAbort = () => ac.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (opts.signal?.aborted) ac.abort();
      await upload.done();
      return { key, size };
    } catch (err) {
      body.destroy();
      counted.destroy();
      if (opts.signal?.aborted) {
        throw new TidemarkError(`backup store ${this.name}: put of '${key}' aborted`, {
          code: 'ABORTED',
          cause: opts.signal.reason,
          context: { store: this.name, key },
        });
      }
      throw s3Error(this.name, 'put', key, err);
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  async putIfAbsent(key: string, body: Buffer): Promise<boolean> {
    const full = this.#key(key);
    try {
      await this.#client.send(new PutObjectCommand({ Bucket: this.#bucket, Key: full, Body: body, IfNoneMatch: '*' }));
      return true;
    } catch (err) {
      if (status(err) === 412) return false;
      throw s3Error(this.name, 'putIfAbsent', key, err);
    }
  }

  async get(key: string, range?: GetRange): Promise<Readable> {
    const full = this.#key(key);
    const r = range === undefined ? undefined : `bytes=${range.start}-${range.end ?? ''}`;
    try {
      const res = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: full, Range: r }));
      if (!(res.Body instanceof Readable)) throw new Error('GetObject answered without a Node stream body');
      return res.Body;
    } catch (err) {
      if (status(err) === 404 && nameOf(err) !== 'NoSuchBucket') throw missingKey(this.name, key, err);
      throw s3Error(this.name, 'get', key, err);
    }
  }

  async head(key: string): Promise<StoredObject | null> {
    const full = this.#key(key);
    try {
      const res = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: full }));
      return { key, size: BigInt(res.ContentLength ?? 0) };
    } catch (err) {
      if (status(err) === 404 && nameOf(err) !== 'NoSuchBucket') return null;
      throw s3Error(this.name, 'head', key, err);
    }
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    checkPrefix(prefix);
    const pages = paginateListObjectsV2(
      { client: this.#client, pageSize: 1000 },
      { Bucket: this.#bucket, Prefix: `${this.#prefix}${prefix}` },
    );
    try {
      for await (const page of pages) {
        for (const o of page.Contents ?? []) {
          if (o.Key === undefined || o.Key.endsWith('/')) continue; // a "directory" marker is not an object
          yield { key: o.Key.slice(this.#prefix.length), size: BigInt(o.Size ?? 0) };
        }
      }
    } catch (err) {
      throw s3Error(this.name, 'list', prefix, err);
    }
  }

  async delete(key: string): Promise<void> {
    const full = this.#key(key);
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: full }));
    } catch (err) {
      if (status(err) === 404 && nameOf(err) !== 'NoSuchBucket') return;
      throw s3Error(this.name, 'delete', key, err);
    }
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }
}

function status(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

function nameOf(err: unknown): string | undefined {
  return (err as { name?: string } | undefined)?.name;
}

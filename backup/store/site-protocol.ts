/**
 * The remote-site store protocol (pure: no I/O): the heads of the BLOB messages (ship/tcp protocol, type 7) that
 * a site store client (site.ts) and the store server of the other site (site-server.ts) exchange over one
 * mutual-TLS connection, one operation at a time:
 *
 *   client                                              server
 *   hello {v, site}                                  →  ok {store}           (the certificate must name `site`)
 *   put {key}, data × N (≤ 1 MiB each), end {size}   →  ok {size}            (abort instead of end: nothing kept)
 *   putIfAbsent {key} + the bytes                    →  ok {written}
 *   get {key, start?, end?}                          →  ok, data × N, eof
 *   head {key}                                       →  ok {size | null}
 *   list {prefix}                                    →  ok {objects, more} × pages, the last with more false
 *   delete {key}                                     →  ok
 *   any failure                                      ←  fail {code, message, retriable, context}
 *
 * Sizes are decimal strings (bigint). A fail carries the store's error code and context, so the client raises
 * the same TidemarkError the store raised on its own site (e.g. IO with {key, missing} for a missing key).
 */
import { z } from 'zod';
import { type ErrorCode, TidemarkError } from '../../core/errors.ts';

export const SITE_STORE_VERSION = 1;
/** Largest data chunk per BLOB message. */
export const DATA_CHUNK = 1 << 20;
/** Keys per list page. */
export const LIST_PAGE = 1000;

const decimal = z.string().regex(/^\d+$/);
const key = z.string().max(1024);

export const requestSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('hello'), v: z.number().int(), site: z.string().min(1).max(128) }),
  z.object({ op: z.literal('put'), key }),
  z.object({ op: z.literal('data') }),
  z.object({ op: z.literal('end'), size: decimal }),
  z.object({ op: z.literal('abort'), reason: z.string().max(2000) }),
  z.object({ op: z.literal('putIfAbsent'), key }),
  z.object({ op: z.literal('get'), key, start: decimal.optional(), end: decimal.optional() }),
  z.object({ op: z.literal('head'), key }),
  z.object({ op: z.literal('list'), prefix: key }),
  z.object({ op: z.literal('delete'), key }),
]);
export type Request = z.infer<typeof requestSchema>;

export const replySchema = z.discriminatedUnion('op', [
  z.object({
    op: z.literal('ok'),
    store: z.string().optional(),
    size: decimal.nullable().optional(),
    written: z.boolean().optional(),
    objects: z.array(z.tuple([key, decimal])).optional(),
    more: z.boolean().optional(),
  }),
  z.object({ op: z.literal('data') }),
  z.object({ op: z.literal('eof') }),
  z.object({
    op: z.literal('fail'),
    code: z.string().max(64),
    message: z.string().max(4000),
    retriable: z.boolean(),
    context: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
  }),
]);
export type Reply = z.infer<typeof replySchema>;

function parseHead<T>(schema: z.ZodType<T>, head: string, who: string): T {
  let raw: unknown;
  try {
    raw = JSON.parse(head);
  } catch {
    throw protocolError(`${who} sent a head that is not JSON`);
  }
  const r = schema.safeParse(raw);
  if (!r.success) throw protocolError(`${who} sent an unexpected message: ${head.slice(0, 200)}`);
  return r.data;
}

export const parseRequest = (head: string): Request => parseHead(requestSchema, head, 'the site store client');
export const parseReply = (head: string): Reply => parseHead(replySchema, head, 'the site store server');

export function protocolError(what: string): TidemarkError {
  return new TidemarkError(`site store: ${what}`, { code: 'LINK_PROTOCOL', retriable: true });
}

/** The codes a fail may carry through to the client as they are; any other arrives as BACKUP_STORE. */
const PASSED: ReadonlySet<string> = new Set<ErrorCode>(['IO', 'USAGE', 'BACKUP_STORE', 'BACKUP_INTEGRITY']);

/** A store error as a fail reply (context limited to plain values; never a stack). */
export function failOf(err: unknown): Reply {
  const t = err instanceof TidemarkError ? err : null;
  const context: Record<string, string | number | boolean | null> = {};
  for (const [k, v] of Object.entries(t?.context ?? {})) {
    if (v === null || ['string', 'number', 'boolean'].includes(typeof v)) context[k] = v as string | number | boolean;
  }
  return {
    op: 'fail',
    code: t?.code ?? 'BACKUP_STORE',
    message: (err instanceof Error ? err.message : String(err)).slice(0, 4000),
    retriable: t?.retriable ?? true,
    context,
  };
}

/** The TidemarkError a fail reply stands for, on the client's side; `where` names the remote store. */
export function errorOf(r: Extract<Reply, { op: 'fail' }>, where: string): TidemarkError {
  const code = (PASSED.has(r.code) ? r.code : 'BACKUP_STORE') as ErrorCode;
  return new TidemarkError(`${where}: ${r.message}`, {
    code,
    retriable: r.retriable,
    context: { ...r.context, remoteCode: r.code },
  });
}

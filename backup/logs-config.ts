/**
 * The `backup.logs` section (issue #13, log backups): the binlog archiver jobs. backup/config.ts composes it as
 * `logs: z.array(logJobSchema).default([])`; a physical job names the log job whose segments restore it to a
 * moment with `backup.jobs[].logs`. Pure: no I/O. The store name is checked when the job runs (the store list
 * lives in backup/config.ts).
 *
 * It lives beside backup/config.ts, not in backup/logs/: backup/config.ts composes it, and backup/logs/ imports
 * backup/ (catalog, manifest, store), so a schema inside backup/logs/ would make a folder cycle
 * (scripts/check-imports.ts allows none).
 *
 *   backup:
 *     logs:
 *       - name: binlogs          # the log job (segment ids and the manifests' `job`)
 *         store: primary        # a store of backup.stores
 *         segment_seconds: 3    # RPO: the open binlog's segments are sealed this often while transactions arrive (3: p99 commit → store < 5 s)
 *         server_id: 4242       # the archiver's replica id (unique among the server's replicas)
 *         start: oldest         # first run only: the oldest binlog the server has, or `current`
 */
import { z } from 'zod';

export const logJobSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}[A-Za-z0-9_])?$/, 'a name: 1-64 letters, digits, _ or -'),
    store: z.string().min(1),
    segment_seconds: z.number().min(0.2).max(3600).default(3),
    server_id: z
      .number()
      .int()
      .min(1)
      .max(2 ** 32 - 1)
      .default(4242),
    start: z.enum(['oldest', 'current']).default('oldest'),
    /** A heartbeat from the server when the binlog is idle; no packet for 5 heartbeats = a dead link. */
    heartbeat_seconds: z.number().min(0.5).max(300).default(2),
    /** A segment is cut at the next group boundary once its bytes reach this (one huge transaction may exceed it). */
    max_segment_bytes: z
      .number()
      .int()
      .min(1 << 16)
      .max(1 << 30)
      .default(16 << 20), // pending segments pause the socket at 2 × this: the archiver stays well under 256 MB of RSS
  })
  .strict();

export type LogJobConfig = z.infer<typeof logJobSchema>;

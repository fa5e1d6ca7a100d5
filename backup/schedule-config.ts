/**
 * Config pieces shared by `backup.jobs` (backup/config.ts) and `backup.copies` (backup/copy-config.ts): names, a
 * schedule, a retention policy. Their own module so both can import them without an import cycle. Pure: no I/O.
 *
 * A schedule is either recurring — `cron:` a croner expression (5 or 6 fields: a leading seconds field is
 * allowed; `@daily`, `@weekly`, `@monthly` too) — or one-off — `at:` an ISO 8601 date-time (with `Z` or an offset;
 * without one it is read in `time_zone`). Exactly one of the two.
 */
import { Cron } from 'croner';
import { z } from 'zod';

export const nameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}[A-Za-z0-9_])?$/, 'a name: 1-64 letters, digits, _ or -');

function croner(pattern: string | Date): boolean {
  try {
    new Cron(pattern, { paused: true }).stop();
    return true;
  } catch {
    return false;
  }
}

export const scheduleSchema = z
  .object({
    cron: z.string().refine(croner, 'a cron expression croner accepts ("0 2 * * *", "@daily")').optional(),
    /** One-off: an ISO 8601 date-time ("2026-12-31T23:00:00", "2026-12-31T22:00:00Z"). */
    at: z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$/, 'an ISO 8601 date-time')
      .refine(croner, 'an ISO 8601 date-time croner accepts')
      .optional(),
    time_zone: z
      .string()
      .refine((tz) => {
        try {
          new Intl.DateTimeFormat('en', { timeZone: tz });
          return true;
        } catch {
          return false;
        }
      }, 'an IANA time zone such as Europe/Paris or UTC')
      .default('UTC'),
  })
  .strict()
  .refine((s) => (s.cron === undefined) !== (s.at === undefined), {
    message: 'give exactly one of cron (recurring) or at (one-off ISO date-time)',
  });

export type ScheduleConfig = z.infer<typeof scheduleSchema>;

export const retentionSchema = z
  .object({
    days: z.number().positive().optional(),
    chains: z.number().int().min(1).optional(),
  })
  .strict()
  .default({});

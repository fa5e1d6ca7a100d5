/**
 * The config shapes of a MySQL/MariaDB endpoint, shared by the source (capture/mysql/config.ts), the targets
 * (apply/mysql/config.ts), source.admin and failover.account (failover/config.ts). The seed of the one MySQL layer
 * (issue #12): nothing here knows the rest of the file.
 */
import { z } from 'zod';

/** A name in the file (source, target): 1-64 letters, digits, "_", "." or "-". */
export const nameSchema = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'a name of 1-64 letters, digits, "_", "." or "-"');
export const portSchema = z.number().int().min(1).max(65535);

export interface PasswordKeys {
  password?: string | undefined;
  password_env?: string | undefined;
  password_file?: string | undefined;
}

export const atMostOnePassword = (e: PasswordKeys): boolean =>
  [e.password, e.password_env, e.password_file].filter((x) => x !== undefined).length <= 1;

export const atMostOnePasswordMessage = { message: 'give at most one of password, password_env, password_file' };

/**
 * An account without an address (used with another endpoint's host and port): a user and at most one of
 * password / password_env / password_file. Used by source.admin and failover.account.
 */
export const accountSchema = z
  .object({
    user: z.string().min(1),
    password: z.string().optional(),
    password_env: z.string().min(1).optional(),
    password_file: z.string().min(1).optional(),
  })
  .strict()
  .refine(atMostOnePassword, atMostOnePasswordMessage);

/**
 * Keys shared by every MySQL/MariaDB endpoint. Exactly one of password / password_env / password_file, or none
 * (socket or passwordless auth). Each endpoint schema spreads these keys into ONE strict object: a strict object
 * combined with `.and()` would let unknown keys through silently (a typo like `pasword_env` must be an error).
 */
export const endpointShape = {
  host: z.string().min(1).default('127.0.0.1'),
  port: portSchema.default(3306),
  user: z.string().min(1),
  password: z.string().optional(),
  password_env: z.string().min(1).optional(),
  password_file: z.string().min(1).optional(),
  connect_timeout_ms: z.number().int().min(100).max(600_000).default(10_000),
  tls: z
    .object({
      ca_file: z.string().optional(),
      cert_file: z.string().optional(),
      key_file: z.string().optional(),
      reject_unauthorized: z.boolean().default(true),
    })
    .strict()
    .optional(),
};

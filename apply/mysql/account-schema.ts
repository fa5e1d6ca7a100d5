/**
 * The config shape of a MySQL/MariaDB account without an address (used with another endpoint's host and port):
 * a user and at most one of password / password_env / password_file. Shared by source.admin (cli/config.ts) and
 * failover.account (failover/config.ts).
 */
import { z } from 'zod';

export interface PasswordKeys {
  password?: string | undefined;
  password_env?: string | undefined;
  password_file?: string | undefined;
}

export const atMostOnePassword = (e: PasswordKeys): boolean =>
  [e.password, e.password_env, e.password_file].filter((x) => x !== undefined).length <= 1;

export const atMostOnePasswordMessage = { message: 'give at most one of password, password_env, password_file' };

export const accountSchema = z
  .object({
    user: z.string().min(1),
    password: z.string().optional(),
    password_env: z.string().min(1).optional(),
    password_file: z.string().min(1).optional(),
  })
  .strict()
  .refine(atMostOnePassword, atMostOnePasswordMessage);

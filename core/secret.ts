/**
 * Secrets on resolved config objects: a password is kept as a non-enumerable property, so JSON.stringify and pino
 * never see it.
 */

/** An endpoint after secrets are resolved. `password` is non-enumerable: JSON.stringify and pino never see it. */
export type ResolvedEndpoint<T> = Omit<T, 'password' | 'password_env' | 'password_file'> & {
  readonly password?: string;
};

/**
 * Gives `ep` its password as a non-enumerable property, so JSON.stringify and pino never see it. A spread of
 * the result drops it again: build new endpoints with withPassword too.
 */
export function withPassword<T extends object>(
  ep: T,
  password: string | undefined,
): T & { readonly password?: string } {
  Object.defineProperty(ep, 'password', { value: password, enumerable: false, writable: false });
  return ep as T & { readonly password?: string };
}

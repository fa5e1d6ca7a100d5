/**
 * A module of zongji's own lib/ folder, loaded by file from the resolved package (its exports do not expose the
 * event classes capture wraps: zongji-rows.ts, zongji-tablemap.ts), or null when this zongji has no such file.
 */
export async function zongjiLib<T>(file: string): Promise<T | null> {
  try {
    const index = import.meta.resolve('@vlasky/zongji');
    return (await import(new URL(`./lib/${file}`, index).href)) as T;
  } catch {
    return null;
  }
}

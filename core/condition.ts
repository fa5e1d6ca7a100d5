/**
 * A condition to wait on in one process: `until(ok)` resolves once `ok()` holds, re-checked whenever `notify()` is
 * called (by whoever changed what `ok` reads). Every waiter is woken on each notify and re-checks its own
 * predicate, so one condition serves waiters of different predicates. No timeouts: a waiter that must also stop
 * for another reason puts that reason into its predicate.
 */
export class Condition {
  #wake: (() => void) | null = null;

  notify(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  async until(ok: () => boolean): Promise<void> {
    while (!ok()) {
      await new Promise<void>((resolve) => {
        const prev = this.#wake;
        this.#wake = () => {
          prev?.();
          resolve();
        };
      });
    }
  }
}

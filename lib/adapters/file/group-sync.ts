import { fdatasync } from "node:fs";

/**
 * Group commit: fdatasyncs every file written in the same turn of the event loop together, so many runs'
 * commits share the cost of making them durable. A caller's promise resolves once its file is synced.
 * Batches run one after the other; `barrier()` waits for every sync asked for before it.
 */
export class GroupSync {
  private pending = new Map<number, { resolve: () => void; reject: (error: Error) => void }[]>();
  private flushing = false;
  /** Batches are numbered: the one filling up is `filling`, those done are <= `done`. */
  private filling = 1;
  private done = 0;
  private barriers: { batch: number; resolve: () => void }[] = [];

  sync(fd: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const waiters = this.pending.get(fd);
      if (waiters) waiters.push({ resolve, reject });
      else this.pending.set(fd, [{ resolve, reject }]);
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  /** Resolves once every sync asked for so far has finished (successfully or not). */
  barrier(): Promise<void> {
    const batch = this.pending.size > 0 ? this.filling : this.filling - 1;
    if (batch <= this.done) return Promise.resolve();
    return new Promise((resolve) => this.barriers.push({ batch, resolve }));
  }

  private async flush(): Promise<void> {
    while (this.pending.size > 0) {
      const batch = this.pending;
      this.pending = new Map();
      this.filling += 1;
      await Promise.all(
        [...batch.entries()].map(
          ([fd, waiters]) =>
            new Promise<void>((done) =>
              fdatasync(fd, (error) => {
                for (const waiter of waiters) {
                  if (error) waiter.reject(error);
                  else waiter.resolve();
                }
                done();
              }),
            ),
        ),
      );
      this.done += 1;
      const ready = this.barriers.filter((barrier) => barrier.batch <= this.done);
      this.barriers = this.barriers.filter((barrier) => barrier.batch > this.done);
      for (const barrier of ready) barrier.resolve();
    }
    this.flushing = false;
  }
}

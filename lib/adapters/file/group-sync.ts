import { fdatasync } from "node:fs";

type Waiter = (error: Error | undefined) => void;

/**
 * Group commit: fdatasyncs every file written in the same turn of the event loop together, so many runs'
 * commits share the cost of making them durable. A caller is told once its file is synced (a callback
 * for the commit path, which must not pay a promise per commit; a promise otherwise). Batches run one
 * after the other; `barrier()` waits for every sync asked for before it.
 */
export class GroupSync {
  private pending = new Map<number, Waiter[]>();
  private flushing = false;
  /** Batches are numbered: the one filling up is `filling`, those done are <= `done`. */
  private filling = 1;
  private done = 0;
  private barriers: { batch: number; resolve: () => void }[] = [];

  /** Resolves once `fd` is synced, or rejects with the sync's error. */
  sync(fd: number): Promise<void> {
    return new Promise((resolve, reject) =>
      this.whenSynced(fd, (error) => (error ? reject(error) : resolve())),
    );
  }

  /** Calls `done` once `fd` is synced (with the sync's error, if it failed). */
  whenSynced(fd: number, done: Waiter): void {
    const waiters = this.pending.get(fd);
    if (waiters) waiters.push(done);
    else this.pending.set(fd, [done]);
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => this.flush());
    }
  }

  /** Resolves once every sync asked for so far has finished (successfully or not). */
  barrier(): Promise<void> {
    const batch = this.pending.size > 0 ? this.filling : this.filling - 1;
    if (batch <= this.done) return Promise.resolve();
    return new Promise((resolve) => this.barriers.push({ batch, resolve }));
  }

  /** Syncs the files of the batch filled so far; the next batch starts when this one is done. */
  private flush(): void {
    const batch = this.pending;
    this.pending = new Map();
    this.filling += 1;
    let left = batch.size;
    for (const [fd, waiters] of batch) {
      fdatasync(fd, (error) => {
        for (const waiter of waiters) waiter(error ?? undefined);
        left -= 1;
        if (left === 0) this.batchDone();
      });
    }
  }

  private batchDone(): void {
    this.done += 1;
    const ready = this.barriers.filter((barrier) => barrier.batch <= this.done);
    this.barriers = this.barriers.filter((barrier) => barrier.batch > this.done);
    for (const barrier of ready) barrier.resolve();
    if (this.pending.size > 0) this.flush();
    else this.flushing = false;
  }
}

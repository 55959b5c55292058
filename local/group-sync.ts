import { fdatasync } from "node:fs";

/**
 * Group commit: fdatasyncs every file written in the same turn of the event loop together, so many runs'
 * commits share the cost of making them durable. A caller's promise resolves once its file is synced.
 */
export class GroupSync {
  private pending = new Map<number, (() => void)[]>();
  private failures = new Map<number, ((error: Error) => void)[]>();
  private flushing = false;

  sync(fd: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const waiters = this.pending.get(fd);
      if (waiters) {
        waiters.push(resolve);
        this.failures.get(fd)?.push(reject);
      } else {
        this.pending.set(fd, [resolve]);
        this.failures.set(fd, [reject]);
      }
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    while (this.pending.size > 0) {
      const batch = this.pending;
      const failures = this.failures;
      this.pending = new Map();
      this.failures = new Map();
      await Promise.all(
        [...batch.keys()].map(
          (fd) =>
            new Promise<void>((done) =>
              fdatasync(fd, (error) => {
                if (error) for (const reject of failures.get(fd) ?? []) reject(error);
                else for (const resolve of batch.get(fd) ?? []) resolve();
                done();
              }),
            ),
        ),
      );
    }
    this.flushing = false;
  }
}

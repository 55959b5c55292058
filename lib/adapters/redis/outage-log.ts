import { getLogger } from "../../core/logger.ts";

/**
 * Says once that a worker lost Redis, and once that it has it back. BullMQ's workers report every failed
 * reconnection of each of their connections (several lines a second while Redis is away): after the first,
 * those go to DEBUG until a connection is ready again.
 */
export class OutageLog {
  private since: number | undefined;

  constructor(
    private readonly url: string,
    private readonly context: Record<string, unknown>,
  ) {}

  /** A connection failed: `error` (mapped, naming the server) at WARN, unless the outage was logged already. */
  lost(error: Error): void {
    if (this.since !== undefined) {
      getLogger().debug(`still without Redis: ${error.message}`, this.context);
      return;
    }
    this.since = Date.now();
    getLogger().warn(
      `${error.message} The worker keeps trying to reconnect and logs again once Redis is back.`,
      this.context,
    );
  }

  /** A connection is ready: says so at INFO when an outage was logged. */
  back(): void {
    if (this.since === undefined) return;
    const seconds = ((Date.now() - this.since) / 1000).toFixed(1);
    this.since = undefined;
    getLogger().info(
      `Redis at ${this.url} is reachable again (after ${seconds} s): the worker goes on`,
      this.context,
    );
  }
}

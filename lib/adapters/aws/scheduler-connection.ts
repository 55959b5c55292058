import type { SchedulerClient, SchedulerClientConfig } from "@aws-sdk/client-scheduler";
import { importOptional } from "../../core/optional-dependency.ts";

/** The EventBridge Scheduler SDK module (its client, commands and exception classes). */
export type SchedulerSdk = typeof import("@aws-sdk/client-scheduler");

/** The SDK and the client to send its commands with. */
export interface SchedulerSession {
  sdk: SchedulerSdk;
  client: SchedulerClient;
}

/** Options of {@link SchedulerConnection}. */
export interface SchedulerConnectionOptions {
  /** A client to use; without it, one is made from `clientConfig` on first use. */
  client?: SchedulerClient | undefined;
  /** Settings of the client made when `client` is omitted. */
  clientConfig?: SchedulerClientConfig | undefined;
}

/**
 * EventBridge Scheduler, loaded on first use. Only a timer beyond SQS's 15 minutes and the management of
 * recurring schedules need it, and loading its SDK costs a function's cold start tens of milliseconds, so a
 * function that never sets such a timer never loads it.
 */
export class SchedulerConnection {
  private loading: Promise<SchedulerSession> | undefined;

  constructor(private readonly options: SchedulerConnectionOptions = {}) {}

  /** The SDK and the client (the given one, or one made now). @throws MissingDependencyError without the SDK */
  session(): Promise<SchedulerSession> {
    this.loading ??= importOptional(
      () => import("@aws-sdk/client-scheduler"),
      "Long timers on AWS (EventBridge Scheduler)",
      ["@aws-sdk/client-scheduler"],
    ).then((sdk) => ({
      sdk,
      client: this.options.client ?? new sdk.SchedulerClient(this.options.clientConfig ?? {}),
    }));
    // A failed import is not kept: installing the package and retrying works without a restart.
    this.loading.catch(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  /** Closes the client this connection made, if it made one (a given client belongs to its owner). */
  close(): void {
    const loading = this.loading;
    this.loading = undefined;
    if (!this.options.client)
      loading?.then(
        ({ client }) => client.destroy(),
        () => {},
      );
  }
}

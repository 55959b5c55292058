import type * as otel from "@opentelemetry/api";
import { MissingDependencyError } from "../core/errors.ts";
import { importOptional } from "../core/optional-dependency.ts";

/** @internal Kept out of the published types: users need not install `@opentelemetry/api`. */
export type OpenTelemetryApi = typeof otel;

/**
 * The specifier is not a literal so that bundlers (the Lambda bundle) leave `@opentelemetry/api` out: it
 * is loaded at run time from the app's own dependencies (or an OpenTelemetry Lambda layer), or not at all.
 */
const API_PACKAGE = "@opentelemetry/api";

let loading: Promise<OpenTelemetryApi | undefined> | undefined;

/**
 * `@opentelemetry/api` when the app has it installed, else undefined (tsworkflow then records nothing).
 * Without a registered SDK the API itself is a no-op; tsworkflow never registers one or starts an exporter.
 * @internal
 */
export function loadOpenTelemetry(): Promise<OpenTelemetryApi | undefined> {
  loading ??= importOptional(
    () => import(/* @vite-ignore */ API_PACKAGE) as Promise<OpenTelemetryApi>,
    "OpenTelemetry",
    [API_PACKAGE],
  ).catch((error: unknown) => {
    if (error instanceof MissingDependencyError) return undefined;
    throw error;
  });
  return loading;
}

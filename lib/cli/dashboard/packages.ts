/**
 * hono and @hono/node-server, the optional peers of the dashboard, loaded when a dashboard is made rather than
 * imported by name: a static import fails while Node links `tsworkflow/cli`, before any code runs, with an
 * `ERR_MODULE_NOT_FOUND` naming one of them, so even the CLI's helpers could not be imported without them.
 * Loaded with `require` (both ship CommonJS builds), a missing one is a `MissingDependencyError` naming both.
 */
import { createRequire } from "node:module";
import type * as NodeServer from "@hono/node-server";
import type * as Hono from "hono";
import type * as BodyLimit from "hono/body-limit";
import { requireOptional } from "../../core/optional-dependency.ts";

const PACKAGES = ["hono", "@hono/node-server"];
const require = createRequire(import.meta.url);

export interface DashboardPackages {
  hono: typeof Hono;
  bodyLimit: typeof BodyLimit;
  nodeServer: typeof NodeServer;
}

let loaded: DashboardPackages | undefined;

/** @throws MissingDependencyError when hono or @hono/node-server is not installed */
export function dashboardPackages(): DashboardPackages {
  const load = <T>(name: string) => requireOptional<T>(require, name, "The dashboard", PACKAGES);
  loaded ??= {
    hono: load("hono"),
    bodyLimit: load("hono/body-limit"),
    nodeServer: load("@hono/node-server"),
  };
  return loaded;
}

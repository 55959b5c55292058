/**
 * tsworkflow/cli: the `tsworkflow` command line and the web dashboard, for use from code
 * (e.g. serving the dashboard from inside your app, with cancel and retry on its own runtime).
 */

export type { SlotReader } from "../inspect/waiting-for.ts";
export type { Backend, BackendOptions, BackendReader, RunActions } from "./backend.ts";
export { backendActions, engineActions, openReader, resolveBackend } from "./backend.ts";
export type {
  DashboardOptions,
  RunningDashboard,
  RunReader,
  ServeDashboardOptions,
} from "./dashboard/server.ts";
export { createDashboard, serveDashboard } from "./dashboard/server.ts";
export { ActionNotAvailableError, BackendUnavailableError, EXIT, UsageError } from "./errors.ts";
export { main } from "./main.ts";
export type { SegmentKind, Timeline, TimelineRow, TimelineSegment } from "./timeline.ts";
export { buildTimeline } from "./timeline.ts";

import { describe, expect, it } from "vitest";
import { scheduleWhen } from "../../lib/cli/schedules.ts";

describe("scheduleWhen", () => {
  it.each([
    [{ workflow: "w", cron: "0 9 * * *", timezone: "Europe/Paris" }, "0 9 * * * (Europe/Paris)"],
    [{ workflow: "w", cron: "0 9 * * *" }, "0 9 * * * (UTC)"],
    [{ workflow: "w", everyMs: 1000 }, "every 1s"],
    [{ workflow: "w", everyMs: 30_000 }, "every 30s"],
    [{ workflow: "w", everyMs: 1500 }, "every 1.50s"],
    [{ workflow: "w", everyMs: 500 }, "every 500ms"],
    [{ workflow: "w", everyMs: 1_800_000 }, "every 30m"],
    [{ workflow: "w", everyMs: 5_400_000 }, "every 1h 30m"],
    [undefined, "-"],
  ])("writes %j as %s, for schedules list and the dashboard alike", (declaration, expected) => {
    expect(scheduleWhen(declaration)).toBe(expected);
  });
});

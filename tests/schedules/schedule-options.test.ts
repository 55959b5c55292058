import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ConfigurationError } from "../../lib/core/errors.ts";
import { Registry } from "../../lib/core/registry.ts";
import { type WorkflowArgs, workflow } from "../../lib/core/workflow.ts";
import { type ScheduleOptions, schedule } from "../../lib/schedules/index.ts";

/** `schedule()` refuses a mistake at once, naming the option, its value and what it may be. */

const registry = new Registry();
const { doubled, anything, repeated } = registry.define(() => ({
  doubled: workflow("so_doubled", async (n: number) => n * 2, { input: z.number().positive() }),
  anything: workflow("so_anything", async (value?: unknown) => String(value)),
  repeated: workflow("so_repeated", async (times: number, text: string) => text.repeat(times)),
}));

/** The message of the ConfigurationError `declare` throws. */
function refusal(declare: () => unknown): string {
  try {
    declare();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    return (error as ConfigurationError).message;
  }
  throw new Error("the schedule was accepted");
}

describe("schedule() options", () => {
  const cases: [string, ScheduleOptions<WorkflowArgs<typeof anything>>, string[]][] = [
    [
      "a timezone that is no IANA name",
      { cron: "* * * * * *", timezone: "Mars/Olympus" },
      ['invalid timezone "Mars/Olympus"', 'IANA timezone name, e.g. "Europe/Paris"'],
    ],
    [
      "an overlap policy that does not exist",
      { every: "1m", overlap: "queue" as never },
      ['invalid overlap "queue"', '"skip", "buffer-one", "allow"'],
    ],
    [
      "a catchup policy that does not exist",
      { every: "1m", catchup: "some" as never },
      ['invalid catchup "some"', '"none", "last", "all"'],
    ],
    ["both cron and every", { cron: "*/3 * * * * *", every: "1s" } as never, ['has both "cron" and "every"']],
    [
      "an endAt before startAt",
      { every: "1m", startAt: new Date("2030-01-01"), endAt: new Date("2029-01-01") },
      ["endAt Date(2029-01-01T00:00:00.000Z) is not after startAt Date(2030-01-01T00:00:00.000Z)"],
    ],
    [
      "a misspelt option (timeZone would leave the cron in UTC)",
      { cron: "0 9 * * *", timeZone: "Europe/Paris" } as never,
      ['unknown option "timeZone"', "The options are cron, timezone, every"],
    ],
    [
      "a timezone beside every",
      { every: "1h", timezone: "Europe/Paris" } as never,
      ['"timezone" applies to a cron expression'],
    ],
    [
      "a jitter that is no duration",
      { every: "1m", jitter: "soon" as never },
      ['jitter must be a duration such as "30s", "5m", "2h", { minutes: 1 } or milliseconds, got "soon".'],
    ],
    [
      "a startAt that is no Date",
      { every: "1m", startAt: "2030-01-01" as never },
      ['invalid startAt "2030-01-01": use a valid Date'],
    ],
    ["a paused flag that is no boolean", { every: "1m", paused: "yes" as never }, ['invalid paused "yes"']],
    [
      "a cron expression that no date matches (February 30)",
      { cron: "0 0 30 2 *", timezone: "Europe/Paris" },
      ['invalid cron expression "0 0 30 2 *": no date matches it', 'e.g. "0 0 L 2 *"'],
    ],
    [
      "a cron expression that no date matches (April 31, seconds first)",
      { cron: "0 0 12 31 4 *" },
      ['invalid cron expression "0 0 12 31 4 *": no date matches it'],
    ],
    [
      "a cron expression with a seventh (year) field, which croner alone takes",
      { cron: "0 0 0 * * * 2030" },
      ['invalid cron expression "0 0 0 * * * 2030": it has 7 fields. Use 5 fields', "or 6 (seconds first)"],
    ],
    [
      "a cron expression of 3 fields, in words that count only 5 or 6 as valid",
      { cron: "0 9 *" },
      [
        "invalid cron expression \"0 9 *\": CronPattern: invalid configuration format ('0 9 *'), 5 or 6 fields are required. Use 5 fields",
      ],
    ],
  ];

  it.each(cases)("refuses %s", (_case, options, parts) => {
    const message = refusal(() => schedule("so-bad", anything, options));
    expect(message).toMatch(/^Schedule "so-bad"/);
    for (const part of parts) expect(message).toContain(part);
  });

  it("names a bad cron expression without a timezone that was not given", () => {
    const message = refusal(() => schedule("so-cron", anything, { cron: "61 * * * *" }));
    expect(message).toContain(
      'invalid cron expression "61 * * * *": CronPattern: Invalid value for minute: 61',
    );
    expect(message).toContain('e.g. "0 9 * * MON-FRI"');
    expect(message).not.toContain("timezone");
  });

  it("refuses args that the workflow's input schema rejects, as start() would at every tick", () => {
    const message = refusal(() => schedule("so-typed", doubled, { every: "1s", args: [-5] }));
    expect(message).toContain('Schedule "so-typed": its args would fail the start of every tick');
    expect(message).toContain('Invalid input for workflow "so_doubled": (input): Too small');
  });

  it("refuses args that are not JSON", () => {
    const message = refusal(() => schedule("so-fn", anything, { every: "1s", args: [() => 1] }));
    expect(message).toContain(
      'The input of workflow "so_anything" is not JSON-serializable: value[0] is a function',
    );
  });

  it("types args from the workflow's parameters, as start() does: wrong or missing args do not compile", () => {
    // Prepare: no input schema, so only the compiler can catch these (the `@ts-expect-error` lines fail tsc
    // when it does not).
    // Act
    // @ts-expect-error the workflow takes (times: number, text: string)
    const swapped = schedule("so-swapped", repeated, { every: "1h", args: ["x", 3] });
    // @ts-expect-error the workflow takes two arguments: args may not be left out
    const missing = schedule("so-missing", repeated, { every: "1h" });
    const typed = schedule("so-repeated", repeated, { every: "1h", args: [3, "x"] });
    // A workflow whose parameters are all optional needs no args.
    const bare = schedule("so-bare", anything, { every: "1h" });
    // Assess: without a schema the run-time check lets wrong args through; the types are what stops them.
    expect(swapped.options.args).toEqual(["x", 3]);
    expect(missing.options.args).toBeUndefined();
    expect(typed.options.args).toEqual([3, "x"]);
    expect(bare.options.args).toBeUndefined();
  });

  it("accepts what croner and the workflow accept", () => {
    for (const options of [
      { cron: "@daily" },
      { cron: "0 0 29 2 *" },
      { cron: "0 0 L 2 *", timezone: "Europe/Paris" },
      { cron: "*/5 * * * * *", timezone: "America/New_York" },
      { every: "15m", startAt: new Date("2030-01-01"), endAt: new Date("2030-02-01"), jitter: "30s" },
      {
        cron: "0 9 * * MON-FRI",
        timezone: "Europe/Paris",
        overlap: "buffer-one",
        catchup: "last",
        paused: true,
      },
    ] satisfies ScheduleOptions[])
      expect(schedule("so-good", anything, options).name).toBe("so-good");
    expect(schedule("so-typed-good", doubled, { every: "1h", args: [21] }).options.args).toEqual([21]);
  });
});

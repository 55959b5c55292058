import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Cron } from "croner";

/**
 * A small EventBridge Scheduler endpoint for tests: the real `@aws-sdk/client-scheduler` talks to it
 * through an `endpoint` override. It keeps one-time schedules, answers like the service
 * (`ConflictException` for a name taken in the group, `ResourceNotFoundException` for a missing
 * schedule or group, `ValidationException` for a malformed request), records every request exactly,
 * and, when its virtual clock passes a schedule's `at(...)` time, sends the target's `Input` to the
 * target queue (via `deliver`) and deletes the schedule if `ActionAfterCompletion` is `DELETE`. A
 * delivery that fails is tried again up to the target's `RetryPolicy.MaximumRetryAttempts`, then the
 * input goes to `DeadLetterConfig.Arn` (or is lost, as the service drops it). `drop(name)` loses a
 * schedule on purpose.
 * Recurring schedules (`cron(...)` in their `ScheduleExpressionTimezone`, `rate(...)`) fire at each
 * occurrence the virtual clock passes (computed with croner), within `StartDate`/`EndDate`, only while
 * `ENABLED`; `<aws.scheduler.scheduled-time>` in the input becomes the occurrence's time, as the service
 * writes it. UpdateSchedule (PUT) replaces a schedule and counts its next occurrence from the virtual now.
 * (LocalStack's Scheduler never fires targets, so a fake is the only way to test the long-sleep path.)
 */
export interface FakeSchedulerOptions {
  /** Sends a target's input to the queue with this ARN. */
  deliver(targetArn: string, input: string): Promise<void>;
  /** Schedule groups that exist. @default ["default"] */
  groups?: string[];
  /** Virtual time to start from (epoch ms). @default Date.now() */
  now?: number;
  region?: string;
  accountId?: string;
}

export interface RecordedSchedulerRequest {
  operation: "CreateSchedule" | "UpdateSchedule" | "DeleteSchedule" | "GetSchedule" | "Unsupported";
  name: string;
  groupName: string;
  /** The request body as sent (CreateSchedule, UpdateSchedule), or `{}`. */
  input: Record<string, unknown>;
  /** HTTP status answered. */
  status: number;
  /** Error type answered, if any. */
  error?: string;
}

export interface StoredSchedule {
  name: string;
  groupName: string;
  scheduleExpression: string;
  /** Epoch ms of the `at(...)` time, or of a recurring schedule's next occurrence (Infinity: none left). */
  at: number;
  timezone: string;
  /** A recurring schedule's next occurrence strictly after an epoch ms (undefined for `at(...)`). */
  next?: (after: number) => number;
  startDate?: number;
  endDate?: number;
  flexibleTimeWindow: { Mode: string; MaximumWindowInMinutes?: number };
  description?: string;
  actionAfterCompletion: string;
  target: {
    Arn: string;
    RoleArn: string;
    Input?: string;
    RetryPolicy?: { MaximumEventAgeInSeconds?: number; MaximumRetryAttempts?: number };
    DeadLetterConfig?: { Arn?: string };
  };
  state: "ENABLED" | "DISABLED";
  arn: string;
}

export interface SchedulerInvocation {
  name: string;
  groupName: string;
  at: number;
  /** Virtual time of delivery. */
  deliveredAt: number;
  /** `cron(...)`, `rate(...)` or `at(...)`. */
  expression: string;
  targetArn: string;
  input: string;
}

const NAME = /^[0-9a-zA-Z_.-]{1,64}$/;
const AT = /^at\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\)$/;
const RATE = /^rate\((\d+) (minutes?|hours?|days?)\)$/;
const CRON = /^cron\((\S+ \S+ \S+ \S+ \S+ \S+)\)$/;
const FIELD_MAX = [59, 23, 31, 12, 7];

/**
 * croner's pattern for EventBridge's 6 cron fields: `?` is `*`, days of the week 1-7 from Sunday
 * become 0-6, `a/n` becomes `a-max/n`; the year must be `*` (the fake's limit). Throws on a
 * malformed expression, as the service's validation does: one of the day fields must be `?`.
 */
function cronerPattern(expression: string): string {
  const fields = expression.split(" ");
  const [, , dom, , dow, year] = fields;
  if (year !== "*") throw new Error("the fake takes a * year only");
  if ((dom === "?") === (dow === "?"))
    throw new Error("exactly one of day-of-month and day-of-week must be ?");
  return fields
    .slice(0, 5)
    .map((field, index) => {
      if (field === "?") return "*";
      const isDow = index === 4;
      const shift = (text: string) => (isDow && /^\d+$/.test(text) ? String(Number(text) - 1) : text);
      return field
        .split(",")
        .map((part) => {
          const [range, step] = part.split("/") as [string, string | undefined];
          const special = /^(\d+)(L|#\d)$/.exec(range);
          if (special) return `${shift(special[1] as string)}${special[2]}`;
          const [from, to] = range.split("-") as [string, string | undefined];
          const end = to ?? (step ? String(FIELD_MAX[index]) : undefined);
          const span = range === "*" ? "*" : end === undefined ? shift(from) : `${shift(from)}-${shift(end)}`;
          return step ? `${span}/${step}` : span;
        })
        .join(",");
    })
    .join(" ");
}

class SchedulerError extends Error {
  constructor(
    readonly type: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class FakeScheduler {
  readonly requests: RecordedSchedulerRequest[] = [];
  readonly invocations: SchedulerInvocation[] = [];
  /** Inputs sent to a schedule's dead-letter queue after its retries ran out. */
  readonly deadLettered: { name: string; dlqArn: string; input: string; attempts: number }[] = [];
  /** Schedules lost without firing, on purpose (`drop`) or after failed deliveries with no DLQ. */
  readonly lost: string[] = [];
  /** How many deliveries fail from now on (each attempt counts), as when the target queue refuses. */
  failDeliveries = 0;
  private readonly schedules = new Map<string, StoredSchedule>();
  private readonly groups: Set<string>;
  private readonly region: string;
  private readonly accountId: string;
  private server: Server | undefined;
  private virtualNow: number;
  private delivering: Promise<void> = Promise.resolve();

  constructor(private readonly options: FakeSchedulerOptions) {
    this.groups = new Set(options.groups ?? ["default"]);
    this.region = options.region ?? "us-east-1";
    this.accountId = options.accountId ?? "000000000000";
    this.virtualNow = options.now ?? Date.now();
  }

  /** Listens on a free loopback port. */
  async start(): Promise<string> {
    const server = createServer((request, response) => void this.handle(request, response));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.server = server;
    return this.endpoint;
  }

  get endpoint(): string {
    const address = this.server?.address() as AddressInfo | undefined;
    if (!address) throw new Error("The fake scheduler is not started.");
    return `http://127.0.0.1:${address.port}`;
  }

  get now(): number {
    return this.virtualNow;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Schedules that exist now. */
  list(): StoredSchedule[] {
    return [...this.schedules.values()].map(({ next: _next, ...schedule }) => structuredClone(schedule));
  }

  /**
   * Moves the virtual clock to `ms` and fires every schedule due by then, in time order (each one
   * sends its input to its target, then is deleted when `ActionAfterCompletion` is `DELETE`).
   */
  async advanceTo(ms: number): Promise<SchedulerInvocation[]> {
    const run = this.delivering.then(() => this.fireDue(ms));
    this.delivering = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  private async fireDue(ms: number): Promise<SchedulerInvocation[]> {
    this.virtualNow = Math.max(this.virtualNow, ms);
    const fired: SchedulerInvocation[] = [];
    // One occurrence at a time, the earliest first, across every schedule.
    for (;;) {
      const entry = [...this.schedules.entries()]
        .filter(([, schedule]) => schedule.state === "ENABLED" && schedule.at <= this.virtualNow)
        .sort(([, a], [, b]) => a.at - b.at)[0];
      if (!entry) return fired;
      const [key, schedule] = entry;
      const at = schedule.at;
      const input = (schedule.target.Input ?? "{}").replaceAll(
        "<aws.scheduler.scheduled-time>",
        `${new Date(at).toISOString().slice(0, 19)}Z`,
      );
      if (schedule.next) schedule.at = schedule.next(at);
      const delivered = await this.deliverWithRetries(schedule, input);
      if (!delivered) {
        if (!schedule.next) this.schedules.delete(key);
        continue;
      }
      const invocation = {
        name: schedule.name,
        groupName: schedule.groupName,
        at,
        deliveredAt: this.virtualNow,
        expression: schedule.scheduleExpression,
        targetArn: schedule.target.Arn,
        input,
      };
      this.invocations.push(invocation);
      fired.push(invocation);
      if (schedule.next) continue;
      if (schedule.actionAfterCompletion === "DELETE") this.schedules.delete(key);
      else schedule.state = "DISABLED";
    }
  }

  /**
   * Delivers one occurrence of a schedule now, as a second delivery of the same tick (EventBridge
   * Scheduler delivers at least once): `at` is the occurrence's time.
   */
  async redeliver(name: string, at: number): Promise<void> {
    const schedule = [...this.schedules.values()].find((candidate) => candidate.name === name);
    if (!schedule) throw new Error(`No schedule ${name} to deliver again.`);
    const input = (schedule.target.Input ?? "{}").replaceAll(
      "<aws.scheduler.scheduled-time>",
      `${new Date(at).toISOString().slice(0, 19)}Z`,
    );
    await this.options.deliver(schedule.target.Arn, input);
  }

  /**
   * Loses a schedule on purpose: it is removed without firing, as if the service had dropped it.
   * Returns false when no such schedule exists.
   */
  drop(name: string, groupName?: string): boolean {
    for (const [key, schedule] of this.schedules) {
      if (schedule.name === name && (groupName === undefined || schedule.groupName === groupName)) {
        this.schedules.delete(key);
        this.lost.push(name);
        return true;
      }
    }
    return false;
  }

  /** Delivers with the target's retry policy; false when the input went to the DLQ or was lost. */
  private async deliverWithRetries(schedule: StoredSchedule, input: string): Promise<boolean> {
    const attempts = 1 + (schedule.target.RetryPolicy?.MaximumRetryAttempts ?? 185);
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      if (this.failDeliveries > 0) {
        this.failDeliveries -= 1;
        continue;
      }
      await this.options.deliver(schedule.target.Arn, input);
      return true;
    }
    const dlqArn = schedule.target.DeadLetterConfig?.Arn;
    if (dlqArn) {
      await this.options.deliver(dlqArn, input);
      this.deadLettered.push({ name: schedule.name, dlqArn, input, attempts });
    } else {
      this.lost.push(schedule.name);
    }
    return false;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", "http://localhost");
    const match = /^\/schedules\/([^/]+)$/.exec(url.pathname);
    const name = match ? decodeURIComponent(match[1] as string) : "";
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    let input: Record<string, unknown> = {};
    const record: RecordedSchedulerRequest = {
      operation: "Unsupported",
      name,
      groupName: "",
      input,
      status: 200,
    };
    try {
      if (text.length > 0) input = JSON.parse(text) as Record<string, unknown>;
      record.input = input;
      if (!match)
        throw new SchedulerError(
          "ValidationException",
          400,
          `The fake scheduler does not serve ${request.method} ${url.pathname}.`,
        );
      if (request.method === "POST") {
        record.operation = "CreateSchedule";
        record.groupName = String(input.GroupName ?? "default");
        this.reply(response, 200, this.create(name, record.groupName, input, false));
      } else if (request.method === "PUT") {
        record.operation = "UpdateSchedule";
        record.groupName = String(input.GroupName ?? "default");
        this.reply(response, 200, this.create(name, record.groupName, input, true));
      } else if (request.method === "DELETE") {
        record.operation = "DeleteSchedule";
        record.groupName = url.searchParams.get("groupName") ?? "default";
        this.delete(name, record.groupName);
        this.reply(response, 200, {});
      } else if (request.method === "GET") {
        record.operation = "GetSchedule";
        record.groupName = url.searchParams.get("groupName") ?? "default";
        this.reply(response, 200, this.get(name, record.groupName));
      } else {
        throw new SchedulerError(
          "ValidationException",
          400,
          `The fake scheduler does not serve ${request.method} on schedules.`,
        );
      }
    } catch (error) {
      const failure =
        error instanceof SchedulerError
          ? error
          : new SchedulerError("ValidationException", 400, `Malformed request: ${String(error)}`);
      record.status = failure.status;
      record.error = failure.type;
      this.reply(response, failure.status, { Message: failure.message }, failure.type);
    }
    this.requests.push(record);
  }

  private reply(response: ServerResponse, status: number, body: unknown, errorType?: string): void {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (errorType) headers["x-amzn-errortype"] = errorType;
    response.writeHead(status, headers);
    response.end(JSON.stringify(body));
  }

  /** CreateSchedule, or UpdateSchedule (`replace`: the schedule must exist, and is replaced). */
  private create(
    name: string,
    groupName: string,
    input: Record<string, unknown>,
    replace: boolean,
  ): { ScheduleArn: string } {
    if (!NAME.test(name))
      throw new SchedulerError(
        "ValidationException",
        400,
        `Invalid schedule name "${name}": 1 to 64 of [0-9a-zA-Z-_.].`,
      );
    if (!this.groups.has(groupName))
      throw new SchedulerError(
        "ResourceNotFoundException",
        404,
        `Schedule group ${groupName} does not exist.`,
      );
    const key = `${groupName}/${name}`;
    if (!replace && this.schedules.has(key))
      throw new SchedulerError("ConflictException", 409, `Schedule ${name} already exists.`);
    if (replace && !this.schedules.has(key))
      throw new SchedulerError("ResourceNotFoundException", 404, `Schedule ${name} does not exist.`);
    const expression = String(input.ScheduleExpression ?? "");
    const timezone = String(input.ScheduleExpressionTimezone ?? "UTC");
    const startDate = typeof input.StartDate === "number" ? input.StartDate * 1000 : undefined;
    const endDate = typeof input.EndDate === "number" ? input.EndDate * 1000 : undefined;
    const recurrence = this.recurrence(expression, timezone, startDate, endDate);
    const window = input.FlexibleTimeWindow as StoredSchedule["flexibleTimeWindow"] | undefined;
    if (!window || (window.Mode !== "OFF" && window.Mode !== "FLEXIBLE")) {
      throw new SchedulerError(
        "ValidationException",
        400,
        "FlexibleTimeWindow.Mode must be OFF or FLEXIBLE.",
      );
    }
    if (
      window.Mode === "FLEXIBLE" &&
      !((window.MaximumWindowInMinutes ?? 0) >= 1 && (window.MaximumWindowInMinutes ?? 0) <= 1440)
    )
      throw new SchedulerError("ValidationException", 400, "MaximumWindowInMinutes is 1 to 1440.");
    const target = input.Target as StoredSchedule["target"] | undefined;
    if (!target?.Arn || !target.RoleArn)
      throw new SchedulerError("ValidationException", 400, "Target.Arn and Target.RoleArn are required.");
    const retry = target.RetryPolicy;
    if (
      retry &&
      ((retry.MaximumRetryAttempts ?? 0) < 0 ||
        (retry.MaximumRetryAttempts ?? 0) > 185 ||
        (retry.MaximumEventAgeInSeconds ?? 60) < 60 ||
        (retry.MaximumEventAgeInSeconds ?? 60) > 86_400)
    )
      throw new SchedulerError(
        "ValidationException",
        400,
        "RetryPolicy: MaximumRetryAttempts is 0 to 185, MaximumEventAgeInSeconds 60 to 86400.",
      );
    if (target.DeadLetterConfig && !/^arn:aws:sqs:/.test(target.DeadLetterConfig.Arn ?? ""))
      throw new SchedulerError("ValidationException", 400, "DeadLetterConfig.Arn must be an SQS queue ARN.");
    const action = String(input.ActionAfterCompletion ?? "NONE");
    if (action !== "NONE" && action !== "DELETE")
      throw new SchedulerError("ValidationException", 400, `Invalid ActionAfterCompletion ${action}.`);
    const arn = `arn:aws:scheduler:${this.region}:${this.accountId}:schedule/${groupName}/${name}`;
    this.schedules.set(key, {
      name,
      groupName,
      scheduleExpression: expression,
      at: recurrence.first,
      timezone,
      ...(recurrence.next ? { next: recurrence.next } : {}),
      ...(startDate === undefined ? {} : { startDate }),
      ...(endDate === undefined ? {} : { endDate }),
      flexibleTimeWindow: window,
      ...(typeof input.Description === "string" ? { description: input.Description } : {}),
      actionAfterCompletion: action,
      target: {
        Arn: target.Arn,
        RoleArn: target.RoleArn,
        ...(target.Input === undefined ? {} : { Input: target.Input }),
        ...(target.RetryPolicy === undefined ? {} : { RetryPolicy: target.RetryPolicy }),
        ...(target.DeadLetterConfig === undefined ? {} : { DeadLetterConfig: target.DeadLetterConfig }),
      },
      state: input.State === "DISABLED" ? "DISABLED" : "ENABLED",
      arn,
    });
    return { ScheduleArn: arn };
  }

  /** The first occurrence (after the virtual now) and, for cron() and rate(), the next of each. */
  private recurrence(
    expression: string,
    timezone: string,
    startDate: number | undefined,
    endDate: number | undefined,
  ): { first: number; next?: (after: number) => number } {
    const at = AT.exec(expression);
    if (at) {
      if (timezone !== "UTC")
        throw new SchedulerError(
          "ValidationException",
          400,
          `The fake scheduler supports the UTC time zone only for at(), not ${timezone}.`,
        );
      const [, year, month, day, hour, minute, second] = at.map(Number) as number[];
      return { first: Date.UTC(year as number, (month as number) - 1, day, hour, minute, second) };
    }
    const from = Math.max(this.virtualNow, (startDate ?? 0) - 1);
    const bounded = (time: number | undefined) =>
      time === undefined || (endDate !== undefined && time > endDate) ? Number.POSITIVE_INFINITY : time;
    const rate = RATE.exec(expression);
    if (rate) {
      const value = Number(rate[1]);
      const unitMs = { minute: 60_000, hour: 3_600_000, day: 86_400_000 }[
        (rate[2] as string).replace(/s$/, "") as "minute" | "hour" | "day"
      ];
      if (!(value >= 1) || (value === 1) !== !(rate[2] as string).endsWith("s"))
        throw new SchedulerError("ValidationException", 400, `Invalid Schedule Expression ${expression}.`);
      const period = value * unitMs;
      // The service counts a rate from the schedule's creation (or its StartDate).
      const origin = Math.max(this.virtualNow, startDate ?? 0);
      const next = (after: number) => bounded(origin + (Math.floor((after - origin) / period) + 1) * period);
      return { first: next(Math.max(this.virtualNow, origin - 1)), next };
    }
    const cron = CRON.exec(expression);
    if (!cron)
      throw new SchedulerError(
        "ValidationException",
        400,
        `Invalid Schedule Expression ${expression}: the fake accepts at(...), rate(...) and cron(...).`,
      );
    let parsed: Cron;
    try {
      parsed = new Cron(cronerPattern(cron[1] as string), { timezone, paused: true });
    } catch (error) {
      throw new SchedulerError(
        "ValidationException",
        400,
        `Invalid Schedule Expression ${expression} or time zone ${timezone}: ${(error as Error).message}`,
      );
    }
    const next = (after: number) =>
      bounded(parsed.nextRun(new Date(Math.max(after, (startDate ?? 0) - 1)))?.getTime());
    return { first: next(from), next };
  }

  private delete(name: string, groupName: string): void {
    if (!this.schedules.delete(`${groupName}/${name}`)) {
      throw new SchedulerError("ResourceNotFoundException", 404, `Schedule ${name} does not exist.`);
    }
  }

  private get(name: string, groupName: string): Record<string, unknown> {
    const schedule = this.schedules.get(`${groupName}/${name}`);
    if (!schedule)
      throw new SchedulerError("ResourceNotFoundException", 404, `Schedule ${name} does not exist.`);
    return {
      Arn: schedule.arn,
      Name: schedule.name,
      GroupName: schedule.groupName,
      ScheduleExpression: schedule.scheduleExpression,
      ScheduleExpressionTimezone: schedule.timezone,
      ActionAfterCompletion: schedule.actionAfterCompletion,
      FlexibleTimeWindow: schedule.flexibleTimeWindow,
      ...(schedule.startDate === undefined ? {} : { StartDate: schedule.startDate / 1000 }),
      ...(schedule.endDate === undefined ? {} : { EndDate: schedule.endDate / 1000 }),
      ...(schedule.description === undefined ? {} : { Description: schedule.description }),
      State: schedule.state,
      Target: schedule.target,
    };
  }
}

/**
 * The basics, as the seed's basic_workflow.py: a flaky step retried with backoff, a validation error that
 * is fatal (no retry) and caught by the workflow, and a durable sleep.
 *
 *   npx tsx examples/basic-workflow.ts
 */
import { FatalError, log, RetryableError, sleep, step, workflow } from "tsworkflow";

const attempts = new Map<string, number>();

/** Fails on its first attempt for each user, as a rate-limited API would, then succeeds. */
export const fetchUser = step(
  "fetch_user",
  async (userId: string) => {
    const attempt = (attempts.get(userId) ?? 0) + 1;
    attempts.set(userId, attempt);
    if (attempt === 1) throw new RetryableError("user service rate limited", { retryAfter: "1s" });
    return { userId, email: userId.includes("bad") ? "not-an-email" : `${userId}@example.com` };
  },
  { maxRetries: 3, retryDelay: "exponential" },
);

export const validateEmail = step("validate_email", async (email: string) => {
  if (!email.includes("@")) throw new FatalError(`invalid email address: ${email}`);
  return email;
});

export const sendNotification = step("send_notification", async (email: string, text: string) => ({
  email,
  text,
  sent: true,
}));

export const basicWorkflow = workflow("basic_workflow", async (userId: string) => {
  const user = await fetchUser(userId);
  let email: string;
  try {
    email = await validateEmail(user.email);
  } catch (error) {
    log.error("validation failed", { userId, reason: (error as Error).message });
    return { userId, notified: false };
  }
  await sleep("1s");
  await sendNotification(email, "Your account is ready");
  return { userId, notified: true };
});

if (import.meta.url === `file://${process.argv[1]}`) {
  const { start, waitForRun, getEvents, shutdown } = await import("tsworkflow");
  for (const userId of ["ada", "bad_user"]) {
    const runId = await start(basicWorkflow, [userId]);
    const run = await waitForRun(runId);
    const events = await getEvents(runId);
    console.log(`${userId}: ${run.status} ${JSON.stringify(run.result)}`);
    console.log(`  ${events.map((event) => event.type).join(" → ")}`);
  }
  await shutdown();
}

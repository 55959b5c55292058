/**
 * Onboarding: a welcome email, a pause, then a tips email. The pause is a durable sleep: no process is
 * held while the run waits, and the run survives restarts.
 *
 *   npx tsx examples/onboarding.ts            # runs it on the embedded file backend (./.tsworkflow)
 */
import { getStepInfo, log, sleep, step, workflow } from "tsworkflow";
import { z } from "zod";

export const sendWelcomeEmail = step(
  "send_welcome_email",
  async (userId: string) => {
    // A real step would call an email API, passing getStepInfo()?.idempotencyKey so a retry sends once.
    return { to: userId, template: "welcome", messageId: `msg_${getStepInfo()?.idempotencyKey ?? userId}` };
  },
  { maxRetries: 5, retryDelay: "exponential" },
);

export const sendTipsEmail = step(
  "send_tips_email",
  async (userId: string) => ({ to: userId, template: "tips" }),
  { maxRetries: 5, retryDelay: "exponential" },
);

/**
 * `onboarding(userId, tipsDelay?)`: the tips email goes out `tipsDelay` (a duration such as `"2s"`, default one
 * day) after the welcome. A string, not a `Duration`: a `Date` would reach the run as its ISO string.
 */
export const onboarding = workflow(
  "onboarding",
  async (userId: string, tipsDelay: string = "1d") => {
    const welcome = await sendWelcomeEmail(userId);
    log.info("welcome email sent", { messageId: welcome.messageId });
    await sleep(tipsDelay);
    await sendTipsEmail(userId);
    return "Onboarding complete";
  },
  {
    maxDuration: "30d",
    input: z.tuple([z.string().min(1, "userId must not be empty"), z.string().optional()]),
  },
);

if (import.meta.url === `file://${process.argv[1]}`) {
  const { start, waitForRun, shutdown } = await import("tsworkflow");
  const runId = await start(onboarding, ["user_123", "2s"]);
  console.log(`started ${runId}; the tips email goes out in 2 s`);
  const run = await waitForRun(runId);
  console.log(`${run.status}: ${JSON.stringify(run.result)}`);
  await shutdown();
}

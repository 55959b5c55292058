/**
 * A weekday report at 9:00 Paris time: a schedule declared in code starts `dailyReport` at every tick,
 * and with `overlap: "skip"` a tick while yesterday's report is still running starts nothing.
 *
 *   npx tsx examples/scheduled-report.ts   # runs the embedded scheduler until Ctrl-C
 */
import { step, workflow } from "tsworkflow";
import { schedule } from "tsworkflow/engine";
import { LocalRuntime } from "tsworkflow/local";

export const collect = step("collect_figures", async (team: string) => ({ team, sales: 42 }));

export const dailyReport = workflow("daily_report", async (team: string) => {
  const figures = await collect(team);
  return `${figures.team}: ${figures.sales} sales`;
});

export const weekdayReport = schedule("weekday-report", dailyReport, {
  cron: "0 9 * * MON-FRI",
  timezone: "Europe/Paris",
  args: ["sales"],
  overlap: "skip",
  catchup: "last",
});

if (import.meta.url === `file://${process.argv[1]}`) {
  // State in .tsworkflow/schedules.json: a restart resumes, the last missed tick caught up.
  const runtime = new LocalRuntime({ dir: ".tsworkflow", schedules: [weekdayReport] });
  console.log(await runtime.listSchedules());
  setInterval(() => undefined, 1 << 30);
}

/**
 * A dashboard built from three sources fetched in parallel with Promise.all: all three steps are
 * scheduled in one activation and run at the same time.
 *
 *   npx tsx examples/parallel.ts
 */
import { step, workflow } from "tsworkflow";

export const fetchProfile = step("fetch_user_profile", async (userId: string) => ({
  userId,
  name: "Ada Lovelace",
}));
export const fetchOrders = step("fetch_orders", async (userId: string) => [
  { id: `${userId}-o1`, total: 42 },
  { id: `${userId}-o2`, total: 17.5 },
]);
export const fetchRecommendations = step("fetch_recommendations", async (_userId: string) => [
  "analytical engines",
  "punched cards",
]);
export const buildDashboard = step(
  "build_dashboard",
  async (profile: { name: string }, orders: { total: number }[], recommendations: string[]) => ({
    greeting: `Welcome back, ${profile.name}`,
    orderCount: orders.length,
    spent: orders.reduce((sum, order) => sum + order.total, 0),
    recommendations,
  }),
);

export const dashboard = workflow("dashboard", async (userId: string) => {
  const [profile, orders, recommendations] = await Promise.all([
    fetchProfile(userId),
    fetchOrders(userId),
    fetchRecommendations(userId),
  ]);
  return buildDashboard(profile, orders, recommendations);
});

if (import.meta.url === `file://${process.argv[1]}`) {
  const { start, waitForRun, shutdown } = await import("tsworkflow");
  const run = await waitForRun(await start(dashboard, ["user_42"]));
  console.log(run.status, JSON.stringify(run.result, null, 2));
  await shutdown();
}

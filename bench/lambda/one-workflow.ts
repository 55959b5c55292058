/** The Lambda entry of a one-workflow app, as a user writes it: what the cold-start bench bundles. */
import { sleep, step, workflow } from "tsworkflow";
import { createHandlers } from "tsworkflow/aws";

const reserveStock = step("reserve_stock", async (sku: string, quantity: number) => ({
  sku,
  reserved: quantity,
}));

export const fulfilOrder = workflow("fulfil_order", async (order: { sku: string; quantity: number }) => {
  const reservation = await reserveStock(order.sku, order.quantity);
  await sleep("10m");
  return reservation;
});

export const { workflowHandler, stepHandler, startHandler, sweeperHandler, reaperHandler } = createHandlers({
  workflows: [fulfilOrder],
});

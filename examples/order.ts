/**
 * process_order: validate, reserve stock, charge, ship. A declined card is a FatalError (no retry, the
 * order fails and the reservation is released in `catch`); the whole run must finish within maxDuration.
 *
 *   npx tsx examples/order.ts
 */
import { FatalError, log, step, workflow } from "tsworkflow";
import { z } from "zod";

export interface Order {
  orderId: string;
  items: { sku: string; quantity: number }[];
  card: string;
}

export const validateOrder = step("validate_order", async (order: Order) => {
  if (order.items.length === 0) throw new FatalError(`order ${order.orderId} has no items`);
  return { orderId: order.orderId, total: order.items.reduce((sum, item) => sum + item.quantity * 10, 0) };
});
export const reserveInventory = step("reserve_inventory", async (orderId: string) => ({
  orderId,
  reservation: `res_${orderId}`,
}));
export const releaseInventory = step("release_inventory", async (reservation: string) => ({
  released: reservation,
}));
export const chargePayment = step(
  "charge_payment",
  async (orderId: string, total: number, card: string) => {
    if (card === "declined") throw new FatalError(`card declined for order ${orderId}`);
    return { orderId, charged: total };
  },
  { maxRetries: 3, retryDelay: "exponential" },
);
export const shipOrder = step("ship_order", async (orderId: string) => ({
  orderId,
  tracking: `TRK-${orderId}`,
}));

export const processOrder = workflow(
  "process_order",
  async (order: Order) => {
    const { total } = await validateOrder(order);
    const { reservation } = await reserveInventory(order.orderId);
    try {
      await chargePayment(order.orderId, total, order.card);
    } catch (error) {
      log.warning("payment failed, releasing the reservation", { orderId: order.orderId });
      await releaseInventory(reservation);
      throw error;
    }
    const shipment = await shipOrder(order.orderId);
    return { orderId: order.orderId, total, tracking: shipment.tracking };
  },
  {
    maxDuration: "1h",
    input: z.object({
      orderId: z.string().min(1),
      items: z.array(z.object({ sku: z.string(), quantity: z.number().int().positive() })),
      card: z.string(),
    }),
  },
);

if (import.meta.url === `file://${process.argv[1]}`) {
  const { start, waitForRun, shutdown } = await import("tsworkflow");
  const good = await start(processOrder, [
    { orderId: "A-1", items: [{ sku: "book", quantity: 2 }], card: "visa" },
  ]);
  const bad = await start(processOrder, [
    { orderId: "A-2", items: [{ sku: "pen", quantity: 1 }], card: "declined" },
  ]);
  for (const runId of [good, bad]) {
    const run = await waitForRun(runId);
    console.log(runId, run.status, JSON.stringify(run.result ?? run.error?.message));
  }
  await shutdown();
}

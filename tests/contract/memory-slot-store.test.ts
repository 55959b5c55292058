import { MemorySlotStore } from "../../lib/engine/memory-slot-store.ts";
import { describeSlotStoreContract } from "./slot-store-contract.ts";

describeSlotStoreContract("MemorySlotStore", {
  create: async () => ({ slots: new MemorySlotStore(), close: async () => {} }),
});

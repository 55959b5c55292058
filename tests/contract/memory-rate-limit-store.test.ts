import { MemoryRateLimitStore } from "../../lib/engine/memory-rate-limit-store.ts";
import { describeRateLimitStoreContract } from "./rate-limit-store-contract.ts";

describeRateLimitStoreContract("MemoryRateLimitStore", {
  create: async () => ({ rates: new MemoryRateLimitStore(), close: async () => {} }),
});

import { MemoryStorage } from "../../lib/adapters/memory/memory-storage.ts";
import { describeEventStoreContract } from "./event-store-contract.ts";

describeEventStoreContract("MemoryStorage", { create: async () => new MemoryStorage() });

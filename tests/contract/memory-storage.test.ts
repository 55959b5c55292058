import { MemoryStorage } from "../../lib/adapters/memory/memory-storage.ts";
import { describeAppendOrderContract, describeEventStoreContract } from "./event-store-contract.ts";

describeEventStoreContract("MemoryStorage", { create: async () => new MemoryStorage() });
describeAppendOrderContract("MemoryStorage", { create: async () => new MemoryStorage() });

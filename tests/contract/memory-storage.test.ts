import { MemoryStorage } from "../../local/memory-storage.ts";
import { describeEventStoreContract } from "./event-store-contract.ts";

describeEventStoreContract("MemoryStorage", { create: async () => new MemoryStorage() });

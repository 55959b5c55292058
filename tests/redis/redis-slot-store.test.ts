import { Redis } from "ioredis";
import { afterAll, beforeAll } from "vitest";
import { RedisSlotStore } from "../../lib/adapters/redis/redis-slot-store.ts";
import { describeSlotStoreContract } from "../contract/slot-store-contract.ts";
import { type RedisServer, startRedisServer } from "./redis-server.ts";

let server: RedisServer;
let prefixes = 0;

beforeAll(async () => {
  server = await startRedisServer();
});

afterAll(async () => {
  await server?.stop();
});

describeSlotStoreContract("RedisSlotStore", {
  async create() {
    const client = new Redis(server.url);
    return {
      slots: new RedisSlotStore(client, `tsw-slots-${++prefixes}:`),
      close: async () => {
        client.disconnect();
      },
    };
  },
});

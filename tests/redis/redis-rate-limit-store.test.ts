import { Redis } from "ioredis";
import { afterAll, beforeAll } from "vitest";
import { RedisRateLimitStore } from "../../lib/adapters/redis/redis-rate-limit-store.ts";
import { describeRateLimitStoreContract } from "../contract/rate-limit-store-contract.ts";
import { type RedisServer, startRedisServer } from "./redis-server.ts";

let server: RedisServer;
let prefixes = 0;

beforeAll(async () => {
  server = await startRedisServer();
});

afterAll(async () => {
  await server?.stop();
});

describeRateLimitStoreContract("RedisRateLimitStore", {
  async create() {
    const client = new Redis(server.url);
    return {
      rates: new RedisRateLimitStore(client, `tsw-rates-${++prefixes}:`),
      close: async () => {
        client.disconnect();
      },
    };
  },
});

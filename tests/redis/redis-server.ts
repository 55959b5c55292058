/** The tests' redis-server harness: a real server on a free loopback port, no persistence, stopped after. */
export { freePort, type RedisServer, startRedisServer } from "../../lib/redis/redis-server.ts";

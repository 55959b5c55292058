export { freePort } from "../../../lib/redis/free-port.ts";

/** Fake credentials: the emulators accept any. */
export const TEST_CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" };
export const TEST_REGION = "us-east-1";

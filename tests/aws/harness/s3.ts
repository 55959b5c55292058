import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import S3rver from "s3rver";
import { TEST_CREDENTIALS, TEST_REGION } from "./free-port.ts";

/** s3rver (an S3 emulator on files) on a free loopback port, reached through the real `@aws-sdk/client-s3`. */
export interface S3Emulator {
  endpoint: string;
  client(): S3Client;
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startS3(): Promise<S3Emulator> {
  const directory = mkdtempSync(join(tmpdir(), "tsworkflow-s3-"));
  const server = new S3rver({ port: 0, address: "127.0.0.1", silent: true, directory });
  const { port } = (await server.run()) as { port: number };
  const endpoint = `http://127.0.0.1:${port}`;
  const client = () =>
    new S3Client({
      endpoint,
      region: TEST_REGION,
      forcePathStyle: true,
      // s3rver checks signatures against its own fixed key pair.
      credentials: { ...TEST_CREDENTIALS, accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
      maxAttempts: 3,
    });
  return {
    endpoint,
    client,
    async createBucket(name) {
      const admin = client();
      await admin.send(new CreateBucketCommand({ Bucket: name }));
      admin.destroy();
    },
    async stop() {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

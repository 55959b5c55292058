import type { S3Client } from "@aws-sdk/client-s3";
import { S3Payloads } from "../adapters/aws/s3-payloads.ts";
import type { AwsConfig } from "./config.ts";

/**
 * The payload store of `config`: S3 is loaded on first use. Emulators and LocalStack serve buckets
 * on paths, not on subdomains.
 */
export function createPayloads(
  config: Pick<AwsConfig, "region" | "endpoints" | "payloadBucket">,
  client?: S3Client,
): S3Payloads {
  const endpoint = config.endpoints.s3;
  return new S3Payloads({
    ...(client ? { client } : {}),
    clientConfig: { region: config.region, ...(endpoint ? { endpoint, forcePathStyle: true } : {}) },
    ...(config.payloadBucket ? { bucket: config.payloadBucket } : {}),
  });
}

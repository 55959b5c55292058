import { SQSClient } from "@aws-sdk/client-sqs";
import { type FauxqsServer, startFauxqs } from "fauxqs";
import { freePort, TEST_CREDENTIALS, TEST_REGION } from "./free-port.ts";

/** The kit's two queues and their dead-letter queues, as the CDK construct creates them. */
export interface KitQueues {
  workflowQueueUrl: string;
  workflowQueueArn: string;
  workflowDlqUrl: string;
  stepQueueUrl: string;
  stepQueueArn: string;
  stepDlqUrl: string;
  /** Where EventBridge Scheduler puts timers it could not deliver. */
  timerDlqUrl: string;
  timerDlqArn: string;
}

/** fauxqs 1.x (an SQS emulator) running in this process on a free loopback port. */
export interface SqsEmulator {
  endpoint: string;
  server: FauxqsServer;
  client(): SQSClient;
  /**
   * Creates a FIFO workflow queue and a standard step queue, each with a DLQ after
   * `maxReceiveCount` receives, named after `prefix`.
   */
  createKitQueues(
    prefix: string,
    options?: { visibilityTimeoutSeconds?: number; maxReceiveCount?: number },
  ): KitQueues;
  /** The URL of the queue with this ARN. */
  urlOfArn(arn: string): string;
  stop(): Promise<void>;
}

export async function startSqs(): Promise<SqsEmulator> {
  const port = await freePort();
  const server = await startFauxqs({ port, host: "localhost", logger: false, defaultRegion: TEST_REGION });
  const endpoint = `http://127.0.0.1:${server.port}`;
  const urls = new Map<string, string>();
  const create = (name: string, attributes: Record<string, string>) => {
    const queue = server.createQueue(name, { attributes });
    urls.set(queue.queueArn, queue.queueUrl);
    return queue;
  };
  return {
    endpoint,
    server,
    client: () =>
      new SQSClient({ endpoint, region: TEST_REGION, credentials: TEST_CREDENTIALS, maxAttempts: 3 }),
    createKitQueues(prefix, options = {}) {
      const visibility = String(options.visibilityTimeoutSeconds ?? 30);
      const maxReceiveCount = options.maxReceiveCount ?? 5;
      const size = { MaximumMessageSize: String(256 * 1024) };
      const workflowDlq = create(`${prefix}-workflow-dlq.fifo`, { FifoQueue: "true", ...size });
      const workflow = create(`${prefix}-workflow.fifo`, {
        FifoQueue: "true",
        VisibilityTimeout: visibility,
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: workflowDlq.queueArn, maxReceiveCount }),
        ...size,
      });
      const stepDlq = create(`${prefix}-step-dlq`, size);
      const step = create(`${prefix}-step`, {
        VisibilityTimeout: visibility,
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: stepDlq.queueArn, maxReceiveCount }),
        ...size,
      });
      const timerDlq = create(`${prefix}-timer-dlq`, size);
      return {
        timerDlqUrl: timerDlq.queueUrl,
        timerDlqArn: timerDlq.queueArn,
        workflowQueueUrl: workflow.queueUrl,
        workflowQueueArn: workflow.queueArn,
        workflowDlqUrl: workflowDlq.queueUrl,
        stepQueueUrl: step.queueUrl,
        stepQueueArn: step.queueArn,
        stepDlqUrl: stepDlq.queueUrl,
      };
    },
    urlOfArn(arn) {
      const url = urls.get(arn);
      if (!url) throw new Error(`No queue with ARN ${arn} in this emulator.`);
      return url;
    },
    stop: () => server.stop(),
  };
}

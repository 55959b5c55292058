import {
  Duration,
  aws_iam as iam,
  Stack,
  type aws_scheduler as scheduler,
  aws_sqs as sqs,
  Validations,
} from "aws-cdk-lib";
import type { Construct } from "constructs";
import type { Settings } from "./props.ts";

/** The kit's queues: the FIFO workflow queue and the standard step queue with their DLQs, and the timer DLQ. */
export interface KitQueues {
  workflowQueue: sqs.Queue;
  workflowDeadLetterQueue: sqs.Queue;
  stepQueue: sqs.Queue;
  stepDeadLetterQueue: sqs.Queue;
  timerDeadLetterQueue: sqs.Queue;
}

/** Every queue encrypted (SQS-managed keys), TLS only, messages kept 14 days. */
export function createQueues(scope: Construct, settings: Settings): KitQueues {
  const queueDefaults = {
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
    removalPolicy: settings.removalPolicy,
  };
  const workflowDeadLetterQueue = new sqs.Queue(scope, "WorkflowDeadLetterQueue", {
    ...queueDefaults,
    fifo: true,
  });
  const workflowQueue = new sqs.Queue(scope, "WorkflowQueue", {
    ...queueDefaults,
    fifo: true,
    // Deduplication ids are derived from each activation's cause (sqs-queue.ts), never the body.
    contentBasedDeduplication: false,
    // High-throughput FIFO: ordering and deduplication per run, throughput across runs.
    deduplicationScope: sqs.DeduplicationScope.MESSAGE_GROUP,
    fifoThroughputLimit: sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
    visibilityTimeout: settings.workflowVisibilityTimeout,
    deadLetterQueue: { queue: workflowDeadLetterQueue, maxReceiveCount: settings.maxReceiveCount },
  });
  const stepDeadLetterQueue = new sqs.Queue(scope, "StepDeadLetterQueue", queueDefaults);
  const stepQueue = new sqs.Queue(scope, "StepQueue", {
    ...queueDefaults,
    visibilityTimeout: settings.stepVisibilityTimeout,
    deadLetterQueue: { queue: stepDeadLetterQueue, maxReceiveCount: settings.maxReceiveCount },
  });
  const timerDeadLetterQueue = new sqs.Queue(scope, "TimerDeadLetterQueue", queueDefaults);
  Validations.of(timerDeadLetterQueue).acknowledge({
    id: "AwsSolutions-SQS3",
    reason:
      "This queue is itself a dead-letter queue: EventBridge Scheduler's DeadLetterConfig of the kit's timer schedules (SQS redrive policies do not name it).",
  });
  return { workflowQueue, workflowDeadLetterQueue, stepQueue, stepDeadLetterQueue, timerDeadLetterQueue };
}

/**
 * The role EventBridge Scheduler assumes for the kit's schedules, trusted for this account's group
 * only (a confused-deputy guard), allowed to send to `targets` (the step queue, the timer DLQ).
 */
export function createSchedulerRole(
  scope: Construct,
  group: scheduler.ScheduleGroup,
  targets: sqs.IQueue[],
): iam.Role {
  const role = new iam.Role(scope, "SchedulerRole", {
    description: "Assumed by EventBridge Scheduler to send tsworkflow's due timers to the step queue",
    // Only schedules of this account's group may use the role (confused-deputy guard).
    assumedBy: new iam.ServicePrincipal("scheduler.amazonaws.com", {
      conditions: {
        StringEquals: { "aws:SourceAccount": Stack.of(scope).account },
        ArnEquals: { "aws:SourceArn": group.scheduleGroupArn },
      },
    }),
  });
  role.addToPolicy(
    new iam.PolicyStatement({
      actions: ["sqs:SendMessage"],
      resources: targets.map((queue) => queue.queueArn),
    }),
  );
  return role;
}

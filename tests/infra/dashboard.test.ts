import { Stack } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { AwsSolutionsChecks } from "cdk-nag";
import { describe, expect, it } from "vitest";
import { DurableWorkflows } from "../../infra/durable-workflows.ts";
import { EXAMPLES_ENTRY } from "../../infra/stack.ts";
import { CLOUDWATCH_METRICS } from "../../lib/observability/cloudwatch-metrics.ts";
import { testApp } from "./helpers.ts";

/** The dashboard's body as the text CloudFormation gets (its tokens resolved to their JSON). */
function dashboardBody(stack: Stack): string {
  const dashboards = Object.values(Template.fromStack(stack).findResources("AWS::CloudWatch::Dashboard"));
  expect(dashboards).toHaveLength(1);
  return JSON.stringify(dashboards[0]?.Properties.DashboardBody);
}

describe("the construct's dashboard prop", () => {
  it("charts the runs per status, step errors and retries, timings, queue ages, dead-letter queues and function errors and throttles", () => {
    // Prepare
    const stack = new Stack(testApp(), "Dashboarded");
    // Act
    new DurableWorkflows(stack, "Workflows", { entry: EXAMPLES_ENTRY, dashboard: true });
    // Assess
    const body = dashboardBody(stack);
    for (const metric of Object.values(CLOUDWATCH_METRICS))
      expect(body).toContain(`SEARCH('{tsworkflow,service,workflow} MetricName=\\\\\\"${metric}\\\\\\"'`);
    for (const title of [
      "Runs per status (5 min)",
      "Step attempts, errors and retries (5 min)",
      "Steps and timers, p99 (ms)",
      "Age of the oldest message (s)",
      "Dead-letter queues",
      "Errors",
      "Throttles",
    ])
      expect(body).toContain(`\\"title\\":\\"${title}\\"`);
    for (const metric of [
      "ApproximateAgeOfOldestMessage",
      "ApproximateNumberOfMessagesVisible",
      "Throttles",
      "Errors",
    ])
      expect(body).toContain(metric);
    expect(new AwsSolutionsChecks().validateScope(stack).violations).toEqual([]);
  });

  it("charts the run metrics of the namespace the handlers write to, and makes no dashboard unless asked", () => {
    // Prepare
    const named = new Stack(testApp(), "Named");
    const plain = new Stack(testApp(), "Plain");
    // Act
    new DurableWorkflows(named, "Workflows", {
      entry: EXAMPLES_ENTRY,
      dashboard: true,
      metricsNamespace: "orders",
    });
    new DurableWorkflows(plain, "Workflows", { entry: EXAMPLES_ENTRY });
    // Assess
    expect(dashboardBody(named)).toContain("SEARCH('{orders,service,workflow} MetricName=");
    expect(Object.keys(Template.fromStack(plain).findResources("AWS::CloudWatch::Dashboard"))).toEqual([]);
  });

  it("quotes in its searches a namespace with spaces or signs, as CloudWatch's search syntax requires", () => {
    // Prepare
    const stack = new Stack(testApp(), "Quoted");
    // Act
    new DurableWorkflows(stack, "Workflows", {
      entry: EXAMPLES_ENTRY,
      dashboard: true,
      metricsNamespace: "orders/eu west",
    });
    // Assess
    expect(dashboardBody(stack)).toContain(
      `SEARCH('{\\\\\\"orders/eu west\\\\\\",service,workflow} MetricName=`,
    );
  });
});

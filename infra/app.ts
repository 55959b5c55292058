/**
 * The CDK app of the repository (`cdk.json`: `npx tsx infra/app.ts`): deploys the example workflows.
 *
 *   npx cdk synth             # offline; cdk-nag AwsSolutions runs as a validation plugin
 *   npx cdk deploy            # to the account and region of your AWS credentials
 *   npm run localstack:deploy # to LocalStack (TSWORKFLOW_LOCALSTACK=1, see local/localstack/)
 */
import { createExamplesApp } from "./stack.ts";

createExamplesApp();

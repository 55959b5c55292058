/**
 * `npm run localstack:deploy`: bootstraps LocalStack for the CDK and deploys the examples stack
 * (infra/app.ts with TSWORKFLOW_LOCALSTACK=1) with cdklocal, writing the stack's outputs to
 * cdk.out/localstack-outputs.json for `npm run localstack:smoke`.
 *
 *   docker compose -f local/localstack/docker-compose.yml up -d
 *   npm run localstack:deploy
 */
import { spawnSync } from "node:child_process";
import {
  cdklocalEnvironment,
  checkLocalStack,
  deployCommands,
  localStackSettings,
  REPO_ROOT,
} from "./settings.ts";

async function main(): Promise<void> {
  const settings = localStackSettings();
  await checkLocalStack(settings.endpoint);
  const env = cdklocalEnvironment(settings);
  for (const { command, args } of deployCommands(settings)) {
    console.log(`$ ${command} ${args.join(" ")}`);
    const result = spawnSync(command, args, { cwd: REPO_ROOT, env, stdio: "inherit" });
    if (result.status !== 0) {
      console.error(`${command} ${args.join(" ")} failed (exit ${result.status ?? result.signal}).`);
      process.exit(result.status ?? 1);
    }
  }
  console.log(
    `Deployed ${settings.stackName} to LocalStack at ${settings.endpoint}; outputs in ${settings.outputsFile}.`,
  );
  console.log("Next: npm run localstack:smoke");
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});

#!/usr/bin/env node
import { processIo } from "./cli-io.js";
import { readProcessEnv } from "./config.js";
import { runCli } from "./run-cli.js";

const controller = new AbortController();
let interrupts = 0;
// First Ctrl-C lets a waiting command finish cleanly (cancel what it served, close its file server);
// a second one means "now".
const onSignal = (): void => {
  interrupts += 1;
  if (interrupts > 1) process.exit(130);
  controller.abort();
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);

process.exitCode = await runCli({ argv: process.argv.slice(2), env: readProcessEnv(), io: processIo(), signal: controller.signal });
process.off("SIGINT", onSignal);
process.off("SIGTERM", onSignal);

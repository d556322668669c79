// `node heartbeat-load-main.js '<LoadArgs as JSON>'`: one load step, one JSON line on stdout.
import { runLoad, type LoadArgs } from "./heartbeat-load.js";

const args = JSON.parse(process.argv[2] ?? "{}") as LoadArgs;
process.stdout.write(JSON.stringify(await runLoad(args)) + "\n");

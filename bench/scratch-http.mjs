import { httpRoundTrips } from "./dist/claim-http.js";
import { ScratchDatabases } from "./dist/scratch-database.js";
const server = process.env.URL ?? "postgres://postgres@127.0.0.1:5499/test";
const databases = new ScratchDatabases(server);
const ctx = { serverUrl: server, databases, progress: (m) => process.stderr.write(m + "\n") };
try {
  const r = await httpRoundTrips(ctx, { httpClaimers: 50, httpJobs: Number(process.argv[2] ?? 5000), httpWarmup: 500, httpProfileJobs: Number(process.argv[3] ?? 1000) });
  const n = r.result.jobs;
  console.log(`http: ${(n / r.result.wallMs * 1000).toFixed(0)} rt/s; per rt: orch ${(r.cpu.processSec*1000/n).toFixed(2)} ms, pg ${(r.cpu.postgresSec*1000/n).toFixed(2)} ms, client ${(r.cpu.selfSec*1000/n).toFixed(2)} ms; errors ${JSON.stringify(r.errors)}`);
  if (process.argv[3] !== "0") console.log(r.profile.rows ? r.profile.rows.slice(0, 14) : JSON.stringify(r.profile).slice(0, 1500));
} finally { await databases.dropAll(); }

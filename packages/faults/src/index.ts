// Building blocks of the fault suite, for benchmarks or ad-hoc chaos runs that want the same fleet.
export { compareApiWithDatabase } from "./api-view-check.js";
export { auditFaultRun, type AuditInput, type AuditResult } from "./fault-audit.js";
export { FAULT_PLAN, runFaultPlan, seededRandom, type DriverTally, type FaultEvent, type FaultStep } from "./fault-driver.js";
export { startFaultFleet, type FaultFleet, type FaultFleetSettings, type UnexpectedExit } from "./fault-fleet.js";
export { startFaultProxy, type FaultProxy, type FaultProxyStats } from "./fault-proxy.js";
export { busyWorkerIds, jobCounts, queryOnce, workerLeftovers, type JobCounts, type WorkerLeftovers } from "./fleet-db.js";
export { startJobSubmitter, type JobSubmitter, type JobSubmitterOptions, type SubmittedJob } from "./job-submitter.js";

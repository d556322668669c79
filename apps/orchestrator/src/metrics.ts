/** In-process counters since start; gauges (jobs by status, workers) are read from the database. */
export class Counters {
  claims = 0;
  emptyClaims = 0;
  heartbeats = 0;
  statusReports = 0;
  leaseLost = 0;
  leasesReaped = 0;
  webhooksDelivered = 0;
  webhooksFailed = 0;
}

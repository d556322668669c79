-- Triggers keep two side effects in the same transaction as the state change that causes them,
-- whichever statement makes it (create, requeue, reaper, cancel), so no code path can forget one.

-- Wakes long-polling claims (LISTEN fleet_job_queued). The payload is constant so PostgreSQL
-- folds the notifications of one transaction into one, even for a bulk insert.
CREATE FUNCTION fleet_notify_job_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('fleet_job_queued', '');
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER jobs_notify_queued_insert AFTER INSERT ON jobs
  FOR EACH ROW WHEN (NEW.status = 'queued')
  EXECUTE FUNCTION fleet_notify_job_queued();
--> statement-breakpoint
CREATE TRIGGER jobs_notify_queued_update AFTER UPDATE OF status ON jobs
  FOR EACH ROW WHEN (NEW.status = 'queued' AND OLD.status <> 'queued')
  EXECUTE FUNCTION fleet_notify_job_queued();
--> statement-breakpoint

-- Terminal webhook outbox: the delivery row commits together with the job's final status.
CREATE FUNCTION fleet_enqueue_webhook() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO webhook_deliveries (job_id, event, url) VALUES (NEW.id, 'job.' || NEW.status, NEW.webhook_url);
  PERFORM pg_notify('fleet_webhook_pending', '');
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER jobs_enqueue_webhook AFTER UPDATE OF status ON jobs
  FOR EACH ROW WHEN (
    NEW.webhook_url IS NOT NULL
    AND NEW.status IN ('succeeded', 'failed', 'cancelled')
    AND OLD.status IS DISTINCT FROM NEW.status
  )
  EXECUTE FUNCTION fleet_enqueue_webhook();

"""Stand-in for the original buffer loop (BUFFER_WORKER_ID / WORKER_MODE=buffer) and its /generate.

One loop, one job at a time: heartbeat (always "idle": the loop only beats between jobs) → claim →
POST /generate and wait, sending nothing to the orchestrator meanwhile (only /generate's own
progress, under WORKER_ID) → one status report whose failure carries only repr() of the error,
never retried → sleep BUFFER_POLL_INTERVAL_SEC → again.
"""

import json
import os
import time

from common import api_headers, log, post_json, start_generate_server


class HTTPStatusError(Exception):
    """Mirrors the repr() the original's HTTP client gives a non-2xx answer."""

    def __init__(self, code, reason, url):
        kind = "Client" if code < 500 else "Server"
        super().__init__(f"{kind} error '{code} {reason}' for url '{url}'\nFor more information check: "
                         f"https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/{code}")


REASONS = {422: "Unprocessable Entity", 500: "Internal Server Error"}


def main():
    worker_id = os.environ.get("BUFFER_WORKER_ID") or f"buffer-{os.uname().nodename}"
    base = os.environ.get("BUFFER_ORCHESTRATOR_BASE_URL") or os.environ["ORCHESTRATOR_BASE_URL"]
    gpu_class = os.environ.get("GPU_CLASS") or os.environ.get("GPU_CLASS_NAME", "Unknown GPU")
    capacity = int(os.environ.get("BUFFER_CAPACITY", "1"))
    interval = float(os.environ.get("BUFFER_POLL_INTERVAL_SEC", "10"))
    generate_url = start_generate_server()
    headers = api_headers()
    status = "idle"
    last_error = None
    log("buffer_loop_started", worker_id=worker_id)
    while True:
        try:
            code, text = post_json(base, f"/internal/buffer/workers/{worker_id}/heartbeat",
                                   {"status": status, "gpu_class": gpu_class, "capacity": capacity, "error": last_error}, headers, 15.0)
            log("heartbeat_sent", code=code, status=status, reply=text[:100])
            if code == 200:
                last_error = None
            if status == "idle":
                code, text = post_json(base, "/internal/buffer/jobs/claim", {"worker_id": worker_id}, headers, 15.0)
                if code != 200:
                    raise RuntimeError(f"claim answered {code}")
                job = json.loads(text).get("job")
                if job:
                    run_job(base, headers, generate_url, job)
        except Exception as exc:
            last_error = repr(exc)
            log("buffer_worker_loop_error", error=last_error)
        status = "idle"
        time.sleep(interval)


def run_job(base, headers, generate_url, job):
    buffer_job_id = job["buffer_job_id"]
    log("job_claimed", buffer_job_id=buffer_job_id, job_id=job["musetalk_job_id"])
    ok, error, output_url, metrics = False, None, None, None
    try:
        body = {k: job[k] for k in ("musetalk_job_id", "video_url", "audio_url", "aspect_ratio", "resolution")}
        body["params"] = {}
        code, text = post_json(generate_url, "/generate", body, {}, 600.0)
        if code >= 400:
            raise HTTPStatusError(code, REASONS.get(code, "Error"), "http://localhost:8000/generate")
        result = json.loads(text)
        ok = result.get("status") in ("success", "succeeded")
        output_url, metrics = result.get("output_url"), result.get("metrics")
        log("generate_result", status=result.get("status"), output_url=output_url)
    except Exception as exc:
        error = repr(exc)
        log("buffer_job_failed", buffer_job_id=buffer_job_id, error=error)
    report = {"status": "succeeded" if ok else "failed", "error": None if ok else error,
              "output_url": output_url if ok else None, "metrics": metrics if ok else None}
    try:
        code, text = post_json(base, f"/internal/buffer/jobs/{buffer_job_id}/status", report, headers, 15.0)
        log("status_update_response", buffer_job_id=buffer_job_id, code=code, reply=text[:300])
    except Exception as exc:
        log("status_update_failed", buffer_job_id=buffer_job_id, error=repr(exc))


if __name__ == "__main__":
    main()

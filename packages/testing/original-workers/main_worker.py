"""Stand-in for the original main-tier polling worker (unified_worker.py) and its /generate.

A heartbeat thread posts {status, current_job_id, provider, gpu_class, worker_type, system_info}
every HEARTBEAT_INTERVAL_SEC (the original: a fixed 10 s), during jobs too. The main loop claims
(no buffer_job_id in the answer), reports "downloading" progress, calls /generate, and sends its
final outcome on /internal/jobs/{id}/progress: succeeded with output_url and metrics, or failed
with "HTTP <code>: <body>" — it has no status route. POLL_INTERVAL_SEC between empty claims.
"""

import json
import os
import threading
import time

from common import api_headers, log, post_json, start_generate_server

WORKER_ID = os.environ.get("SALAD_MACHINE_ID") or os.environ.get("VAST_CONTAINERLABEL") or os.environ.get("WORKER_ID") or "worker-standin"
BASE = os.environ["ORCHESTRATOR_BASE_URL"]
STATE = {"status": "idle", "current_job_id": None}
LOCK = threading.Lock()


def heartbeat_loop(interval):
    system_info = {"cpu_cores_physical": os.cpu_count(), "cpu_cores_logical": os.cpu_count(), "cpu_model": "standin",
                   "ram_total_gb": 8.0, "download_speed_mbps": None}
    while True:
        with LOCK:
            status, job = STATE["status"], STATE["current_job_id"]
        try:
            code, text = post_json(BASE, f"/internal/main/workers/{WORKER_ID}/heartbeat",
                                   {"status": status, "current_job_id": job, "provider": os.environ.get("PROVIDER", "local"),
                                    "gpu_class": os.environ.get("GPU_CLASS_NAME", "unknown"),
                                    "worker_type": os.environ.get("WORKER_TYPE", "main"), "system_info": system_info},
                                   api_headers(), 10.0)
            log("main_heartbeat_sent", code=code, status=status, current_job_id=job, reply=text[:100])
        except Exception as exc:
            log("main_heartbeat_failed", error=repr(exc))
        time.sleep(interval)


def report(job_id, status, progress, phase, metrics=None, error=None, output_url=None):
    body = {"status": status, "progress": progress, "phase": phase, "worker_id": WORKER_ID, "metrics": metrics, "error": error}
    if output_url:
        body["output_url"] = output_url
    try:
        code, text = post_json(BASE, f"/internal/jobs/{job_id}/progress", body, api_headers(), 10.0)
        log("main_report_sent", job_id=job_id, status=status, code=code, reply=text[:300])
    except Exception as exc:
        log("main_report_failed", job_id=job_id, error=repr(exc))


def process(generate_url, job):
    job_id = job["musetalk_job_id"]
    report(job_id, "running", 0.05, "downloading")
    body = {"musetalk_job_id": job_id, "video_url": job["video_url"], "audio_url": job["audio_url"],
            "aspect_ratio": job.get("aspect_ratio", "1:1"), "resolution": job.get("resolution", "512x512"), "params": {}}
    try:
        code, text = post_json(generate_url, "/generate", body, {}, 600.0)
    except Exception as exc:
        report(job_id, "failed", 0.0, "failed", error=f"{type(exc).__name__}: {exc}")
        return
    if code == 200:
        result = json.loads(text)
        if result.get("status") in ("succeeded", "success"):
            report(job_id, "succeeded", 1.0, "completed", metrics=result.get("metrics"), output_url=result.get("output_url"))
        else:
            report(job_id, "failed", 0.0, "failed", error=result.get("error") or result.get("error_message") or "Unknown error from /generate")
    else:
        report(job_id, "failed", 0.0, "failed", error=f"HTTP {code}: {text[:10000]}")


def main():
    generate_url = start_generate_server()
    threading.Thread(target=heartbeat_loop, args=(float(os.environ.get("HEARTBEAT_INTERVAL_SEC", "10")),), daemon=True).start()
    poll = float(os.environ.get("POLL_INTERVAL_SEC", "5"))
    log("main_loop_started", worker_id=WORKER_ID)
    while True:
        job = None
        try:
            code, text = post_json(BASE, "/internal/main/jobs/claim",
                                   {"worker_id": WORKER_ID, "worker_type": os.environ.get("WORKER_TYPE", "main"),
                                    "gpu_class": os.environ.get("GPU_CLASS_NAME", "unknown")}, api_headers(), 15.0)
            data = json.loads(text) if code == 200 else {}
            if code != 200 or data.get("error"):
                log("claim_failed", code=code, reply=text[:200])
            else:
                job = data.get("job")
        except Exception as exc:
            log("claim_failed", error=repr(exc))
        if job:
            log("job_claimed", job_id=job["musetalk_job_id"], has_buffer_job_id="buffer_job_id" in job)
            with LOCK:
                STATE["status"], STATE["current_job_id"] = "busy", job["musetalk_job_id"]
            process(generate_url, job)
            with LOCK:
                STATE["status"], STATE["current_job_id"] = "idle", None
        else:
            time.sleep(poll)


if __name__ == "__main__":
    main()

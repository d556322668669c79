"""Shared parts of the stand-ins for the original Python workers (standard library only).

Written from how the original worker image behaves (its buffer loop, its main-tier loop and its
/generate endpoint), not copied from it: the wire bodies, the order of calls, what is sent when,
and what is not sent (no heartbeat while /generate runs in the buffer loop) are what matter here.
"""

import http.client
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PRINT_LOCK = threading.Lock()


def log(event, **fields):
    """One JSON line per event on stdout, so the test can wait for what it needs."""
    with PRINT_LOCK:
        sys.stdout.write(json.dumps({"event": event, "t": time.time(), **fields}) + "\n")
        sys.stdout.flush()


def post_json(base_url, path, body, headers, timeout):
    """POST with the header names spelled exactly as given (urllib would re-case them)."""
    url = urllib.parse.urlsplit(base_url.rstrip("/") + path)
    conn_cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(url.hostname, url.port, timeout=timeout)
    try:
        payload = json.dumps(body).encode()
        conn.request("POST", url.path, body=payload, headers={**headers, "Content-Type": "application/json"})
        resp = conn.getresponse()
        text = resp.read().decode(errors="replace")
        return resp.status, text
    finally:
        conn.close()


def api_headers():
    spelling = os.environ.get("STANDIN_KEY_HEADER", "X-Internal-API-Key")
    return {spelling: os.environ["INTERNAL_API_KEY"]}


def current_worker_id():
    """What the original /generate reports progress under: the machine id, WORKER_ID, else the hostname."""
    return os.environ.get("SALAD_MACHINE_ID") or os.environ.get("WORKER_ID") or os.uname().nodename


def send_progress(job_id, **fields):
    """Best effort, like the original /generate: skipped without ORCHESTRATOR_BASE_URL, errors logged."""
    base = os.environ.get("ORCHESTRATOR_BASE_URL")
    if not base or not os.environ.get("INTERNAL_API_KEY"):
        return
    body = {k: v for k, v in fields.items() if v is not None}
    body["worker_id"] = current_worker_id()
    body["config_label"] = os.environ.get("CONFIG_LABEL", "default")
    body["batch_size"] = int(os.environ.get("BATCH_SIZE", "8"))
    try:
        code, text = post_json(base, f"/internal/jobs/{job_id}/progress", body, {"X-Internal-API-Key": os.environ["INTERNAL_API_KEY"]}, 5.0)
        log("progress_sent", job_id=job_id, code=code, progress=body.get("progress"), worker_id=body["worker_id"], reply=text[:200])
    except Exception as exc:  # best effort, as the original
        log("progress_update_failed", job_id=job_id, error=repr(exc))


class GenerateHandler(BaseHTTPRequestHandler):
    """A stand-in for the original /generate: takes FAKE_GENERATE_SECONDS, then answers per FAKE_GENERATE_OUTCOME.

    success → 200 {status:"success", output_url, musetalk_job_id, metrics}; media_error → 422 with
    the original's failure body; processing_error → 500. It reports progress while it "infers".
    """

    def log_message(self, *_args):
        pass

    def do_GET(self):
        if self.path == "/hc":
            self._reply(200, {"status": "ok"})
        else:
            self._reply(404, {"detail": "Not Found"})

    def do_POST(self):
        if self.path != "/generate":
            self._reply(404, {"detail": "Not Found"})
            return
        req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        job_id = req.get("musetalk_job_id")
        seconds = float(os.environ.get("FAKE_GENERATE_SECONDS", "0.5"))
        outcome = os.environ.get("FAKE_GENERATE_OUTCOME", "success")
        log("generate_started", job_id=job_id, seconds=seconds, outcome=outcome)
        started = time.time()
        send_progress(job_id, status="running", progress=0.1, phase="inference")
        steps = max(1, int(seconds / 0.5))
        for i in range(steps):
            time.sleep(seconds / steps)
            send_progress(job_id, status="running", progress=round(0.1 + 0.8 * (i + 1) / steps, 3), phase="inference")
        if outcome == "media_error":
            self._reply(422, {"status": "failed", "error_type": "media_error", "error_message": "No face detected in the video",
                              "stage": "preprocessing", "details": {}, "retryable": False, "stage_times": {}})
            return
        if outcome == "processing_error":
            self._reply(500, {"status": "failed", "error_type": "processing_error", "error_message": "CUDA out of memory",
                              "stage": "inference", "details": {}, "stack_trace": "", "retryable": True, "stage_times": {}})
            return
        send_progress(job_id, status="running", progress=0.95, phase="uploading")
        self._reply(200, {"status": "success", "musetalk_job_id": job_id, "error": None,
                          "output_url": f"https://f000.backblazeb2.com/file/talking-avatar/avatar/outputs/{job_id}.mp4",
                          "metrics": {"total_time": round(time.time() - started, 3), "gpu_class": os.environ.get("GPU_CLASS_NAME", "unknown")}})

    def _reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def start_generate_server():
    """/generate and /hc on 127.0.0.1 (a free port), served from a thread of this process."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), GenerateHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    log("generate_listening", url=url)
    return url

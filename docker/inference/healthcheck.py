"""Docker HEALTHCHECK: healthy while the engine is READY or BUSY (a running job is healthy).

/health-check answers 200 in every state (Cog's convention, which the worker's driver reads),
so the state in the body decides; STARTING and SETUP_FAILED are unhealthy.
"""

import json
import os
import sys
import urllib.request

port = os.environ.get("INFERENCE_PORT") or "5000"
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health-check", timeout=5) as response:
        status = json.load(response).get("status")
except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy"
    print(f"health-check unreachable: {exc}")
    sys.exit(1)
print(f"health-check: {status}")
sys.exit(0 if status in ("READY", "BUSY") else 1)

"""Is every installed Python package pinned in constraints.txt, at the installed version?

    python3 checks/lock_check.py <constraints.txt> <frozen output>     STRICT_LOCK=1 fails on a gap

Writes the complete `name==version` list of this environment to <frozen output> (the file to
copy over constraints.txt after the first networked build), prints `UNPINNED name==version` for
each package the constraints do not pin and `MISMATCH` for one installed at another version.
A mismatch always fails (pip was told otherwise, so something is wrong); unpinned packages fail
only with STRICT_LOCK=1, which is how builds run once the lock is filled.
"""

from __future__ import annotations

import os
import re
import sys
from importlib import metadata
from typing import Dict


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_constraints(path: str) -> Dict[str, str]:
    pins: Dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            name, sep, version = line.partition("==")
            if not sep:
                raise SystemExit(f"lock_check: {path}: not a name==version pin: {raw.strip()!r}")
            pins[canonical(name)] = version.strip()
    return pins


def main(argv: list) -> int:
    if len(argv) != 3:
        print("usage: lock_check.py <constraints.txt> <frozen output>", file=sys.stderr)
        return 2
    pins = read_constraints(argv[1])
    installed = {canonical(d.metadata["Name"]): (d.metadata["Name"], d.version) for d in metadata.distributions()}
    unpinned, mismatched = 0, 0
    with open(argv[2], "w", encoding="utf-8") as frozen:
        frozen.write("# pip freeze of the MuseTalk image (checks/lock_check.py); copy over constraints.txt\n")
        for key in sorted(installed):
            name, version = installed[key]
            frozen.write(f"{name}=={version}\n")
            if key not in pins:
                unpinned += 1
                print(f"lock_check: UNPINNED {name}=={version}")
            elif pins[key] != version:
                mismatched += 1
                print(f"lock_check: MISMATCH {name}: constraints say {pins[key]}, installed {version}", file=sys.stderr)
    print(f"lock_check: {len(installed)} packages, {unpinned} unpinned, {mismatched} mismatched; full list in {argv[2]}")
    if mismatched:
        return 1
    if unpinned and os.environ.get("STRICT_LOCK") == "1":
        print("lock_check: unpinned packages and STRICT_LOCK=1", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

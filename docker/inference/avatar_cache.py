"""Prepared avatars kept across jobs, on the shared volume, bounded in bytes (LRU).

Preparing an avatar (decode, face boxes, crops, VAE latents, blending masks) depends only on the
video's bytes and the settings that change the result, not on the voice; avatar products reuse a
few avatars for many voices. An entry is keyed by sha256(video bytes) + those settings, and holds
the frames (JPEG), a data file (boxes, latents, masks) and a manifest written last.

Safety:
- crash-safe: an entry is built under `.tmp/` and renamed into place in one step; a directory
  without a valid manifest, or whose files do not match it (sizes, the data file's sha256), is
  corrupt: it is removed and rebuilt, never used;
- concurrency: one lock file per key (flock, so it holds across threads, processes and containers
  sharing the volume on one host). Users hold it shared while they read an entry; the one that
  prepares holds it exclusive, so a second prediction for the same avatar waits and then uses
  the entry; eviction only removes entries it can lock exclusively (nobody is using them);
- bounded: after each insert, least recently used entries are evicted until the total is at most
  `max_bytes`. An avatar bigger than the bound on its own is prepared in the job's directory and
  not cached.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple

FORMAT = 1
MANIFEST = "manifest.json"
DATA = "avatar.pt"


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_key(video_sha256: str, settings: Dict[str, Any]) -> str:
    material = json.dumps({"format": FORMAT, "video": video_sha256, "settings": settings}, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()[:40]


class Lease:
    """A prepared avatar in use: the shared lock keeps eviction away until release(). An avatar
    too big to cache lives in a staging directory that release() removes."""

    def __init__(self, directory: str, lock_fd: Optional[int], remove: bool = False) -> None:
        self.directory = directory
        self._fd = lock_fd
        self._remove = remove

    def release(self) -> None:
        if self._remove:
            shutil.rmtree(self.directory, ignore_errors=True)
            self._remove = False
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.release()


class AvatarCache:
    def __init__(self, root: str, max_bytes: int, log: Optional[Callable[..., None]] = None) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.log = log or (lambda *_a, **_k: None)
        self._stats_lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.corrupt = 0
        for sub in ("entries", "locks", ".tmp"):
            os.makedirs(os.path.join(root, sub), exist_ok=True)
        self._sweep_temporaries()

    def entry_dir(self, key: str) -> str:
        return os.path.join(self.root, "entries", key)

    def _lock_path(self, key: str) -> str:
        return os.path.join(self.root, "locks", f"{key}.lock")

    def get_or_prepare(self, key: str, prepare: Callable[[str], Any], save: Callable[[Any, str], None],
                       load: Callable[[str], Any]) -> Tuple[Any, Lease, bool]:
        """The prepared avatar for key, a lease on it, and whether it came from the cache.

        prepare(directory) builds the avatar with its frames under `directory`; save(avatar,
        path) writes the rest to one data file; load(directory) reads an entry back. Release the
        lease once the job no longer reads the avatar's frames."""
        fd = os.open(self._lock_path(key), os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            avatar = self._load(key, load)
            if avatar is None:
                # Exclusive to prepare. A prediction that waited here while another prepared the
                # same avatar finds the entry on the re-check and uses it.
                fcntl.flock(fd, fcntl.LOCK_UN)
                fcntl.flock(fd, fcntl.LOCK_EX)
                avatar = self._load(key, load, repair=True)
                if avatar is None:
                    return self._prepare(key, fd, prepare, save, load)
                fcntl.flock(fd, fcntl.LOCK_SH)
            self._count(hit=True)
            os.utime(os.path.join(self.entry_dir(key), MANIFEST))  # LRU: its last use
            return avatar, Lease(self.entry_dir(key), fd), True
        except BaseException:
            os.close(fd)
            raise

    def has(self, key: str) -> bool:
        """Whether an entry for key looks complete, cheaply (manifest and file sizes; the data
        file's sha256 is checked when a job loads it). A yes marks the entry as just used, so
        the job that follows is unlikely to find it evicted."""
        directory = self.entry_dir(key)
        if not os.path.isdir(directory) or self._check(directory, hash_data=False) is not None:
            return False
        try:
            os.utime(os.path.join(directory, MANIFEST))
        except OSError:
            return False  # evicted between the check and now
        return True

    def _load(self, key: str, load: Callable[[str], Any], repair: bool = False) -> Any:
        """The entry when it is complete and intact; with repair (exclusive lock held), a corrupt
        one is removed so it gets rebuilt."""
        directory = self.entry_dir(key)
        if not os.path.isdir(directory):
            return None
        problem = self._check(directory)
        if problem is None:
            try:
                return load(directory)
            except Exception as exc:  # noqa: BLE001 - an unreadable entry is a corrupt one
                problem = f"unreadable: {type(exc).__name__}: {exc}"
        if repair:
            self.log("warn", "avatar_cache_corrupt", key=key, problem=problem)
            with self._stats_lock:
                self.corrupt += 1
            self._remove(directory)
        return None

    def _prepare(self, key: str, fd: int, prepare: Callable[[str], Any], save: Callable[[Any, str], None],
                 load: Callable[[str], Any]) -> Tuple[Any, Lease, bool]:
        started = time.monotonic()
        staging = os.path.join(self.root, ".tmp", f"{key}.{uuid.uuid4().hex[:8]}")
        os.makedirs(staging)
        try:
            save(prepare(staging), os.path.join(staging, DATA))
            files: Dict[str, int] = {}
            for folder, _dirs, names in os.walk(staging):
                for name in names:
                    path = os.path.join(folder, name)
                    files[os.path.relpath(path, staging)] = os.path.getsize(path)
            manifest = {"format": FORMAT, "key": key, "files": files, "bytes": sum(files.values()),
                        "data_sha256": file_sha256(os.path.join(staging, DATA)),
                        "created_at": time.time(), "prepare_sec": round(time.monotonic() - started, 3)}
            with open(os.path.join(staging, MANIFEST), "w", encoding="utf-8") as handle:
                json.dump(manifest, handle)
                handle.flush()
                os.fsync(handle.fileno())
            self._count(hit=False)
            if manifest["bytes"] > self.max_bytes:
                self.log("info", "avatar_cache_too_big", key=key, bytes=manifest["bytes"], max_bytes=self.max_bytes)
                return load(staging), Lease(staging, fd, remove=True), False
            directory = self.entry_dir(key)
            os.rename(staging, directory)  # the one step that makes the entry visible
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        fcntl.flock(fd, fcntl.LOCK_SH)
        self.log("info", "avatar_cache_stored", key=key, bytes=manifest["bytes"], prepare_sec=manifest["prepare_sec"])
        self._evict(keep=key)
        return load(directory), Lease(directory, fd), False

    def stats(self) -> Dict[str, Any]:
        entries = self._entries()
        with self._stats_lock:
            lookups = self.hits + self.misses
            return {
                "bytes": sum(size for _key, size, _used in entries),
                "max_bytes": self.max_bytes,
                "entries": len(entries),
                "hits": self.hits,
                "misses": self.misses,
                "hit_rate": round(self.hits / lookups, 4) if lookups else None,
                "evictions": self.evictions,
                "corrupt_rebuilt": self.corrupt,
            }

    # -- internals -----------------------------------------------------------------------------

    def _count(self, hit: bool) -> None:
        with self._stats_lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    def _check(self, directory: str, hash_data: bool = True) -> Optional[str]:
        try:
            with open(os.path.join(directory, MANIFEST), encoding="utf-8") as handle:
                manifest = json.load(handle)
        except (OSError, ValueError) as exc:
            return f"manifest: {exc}"
        if manifest.get("format") != FORMAT:
            return f"format {manifest.get('format')} (expected {FORMAT})"
        for name, size in (manifest.get("files") or {}).items():
            path = os.path.join(directory, name)
            if not os.path.isfile(path) or os.path.getsize(path) != size:
                return f"{name} is missing or has the wrong size"
        if hash_data and file_sha256(os.path.join(directory, DATA)) != manifest.get("data_sha256"):
            return f"{DATA} does not match its sha256"
        return None

    def _entries(self) -> List[Tuple[str, int, float]]:
        found = []
        entries = os.path.join(self.root, "entries")
        for key in os.listdir(entries):
            manifest = os.path.join(entries, key, MANIFEST)
            try:
                with open(manifest, encoding="utf-8") as handle:
                    size = int(json.load(handle).get("bytes") or 0)
                found.append((key, size, os.path.getmtime(manifest)))
            except (OSError, ValueError):
                continue
        return found

    def _evict(self, keep: str) -> None:
        entries = sorted(self._entries(), key=lambda e: e[2])  # least recently used first
        total = sum(size for _key, size, _used in entries)
        for key, size, _used in entries:
            if total <= self.max_bytes:
                break
            if key == keep:
                continue
            fd = os.open(self._lock_path(key), os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # in use by a job: it stays
            try:
                self._remove(self.entry_dir(key))
                total -= size
                with self._stats_lock:
                    self.evictions += 1
                self.log("info", "avatar_cache_evicted", key=key, bytes=size)
            finally:
                os.close(fd)

    def _remove(self, directory: str) -> None:
        # Renamed away first: a half-deleted entry is never seen under its key.
        trash = os.path.join(self.root, ".tmp", f"trash.{uuid.uuid4().hex[:8]}")
        try:
            os.rename(directory, trash)
        except OSError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    def _sweep_temporaries(self) -> None:
        """Staging directories a crash left behind, unless that key is being prepared right now."""
        staging_root = os.path.join(self.root, ".tmp")
        for name in os.listdir(staging_root):
            path = os.path.join(staging_root, name)
            key = name.split(".", 1)[0]
            if key == "trash":
                shutil.rmtree(path, ignore_errors=True)
                continue
            fd = os.open(self._lock_path(key), os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(path, ignore_errors=True)
            except BlockingIOError:
                pass
            finally:
                os.close(fd)

"""One owner per run folder: an exclusive ``flock`` on ``<run_dir>/.lock`` naming its holder."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

LOCK_NAME = ".lock"


class RunLock:
    """An exclusive, non-blocking ``flock`` on ``<run_dir>/.lock``.

    The kernel releases a flock when its holder dies, so stale locks need no
    detection. Works on local file systems and NFS (Linux emulates flock with
    NFS byte-range locks); Lustre needs the ``flock`` mount option.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self.acquired = False
        self.holder: dict[str, Any] = {}
        self.previous_owner: dict[str, Any] | None = None
        self._fd: int | None = None

    def acquire(self) -> bool:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.holder = _read_lock_content(fd)
                os.close(fd)
                return False
            except OSError as exc:
                os.close(fd)
                raise OSError(
                    exc.errno,
                    f"cannot lock {self.path} ({exc.strerror}); run folders need a file system "
                    "with flock (on Lustre, mount with -o flock)",
                ) from None
            # The previous holder may have removed the file between our open and
            # flock; then we hold a lock on a deleted file. Try again.
            try:
                same_file = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same_file = False
            if not same_file:
                os.close(fd)
                continue
            content = _read_lock_content(fd)
            self.previous_owner = content or None  # a clean finish removes the file
            owner = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(owner).encode(), 0)
            self._fd, self.acquired = fd, True
            return True

    def release(self) -> None:
        if self._fd is None:
            return
        # Remove the file while still holding the lock, so nobody takes it over
        # from a file that is about to disappear (acquire checks the inode).
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd, self.acquired = None, False

    def describe_holder(self) -> str:
        if not self.holder:
            return "another process"
        return f"pid {self.holder.get('pid')} on host {self.holder.get('host')} since {self.holder.get('started')}"

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()


def _read_lock_content(fd: int) -> dict[str, Any]:
    try:
        content = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return content if isinstance(content, dict) else {}

"""One capture per output folder: an OS lock on `<out>/.capture.lock`.

The process that merges the index (the one process without a launcher, the
main process of an `accelerate launch` / `torchrun` launch) takes
`fcntl.flock` on the file before anything is written and keeps it to the
end; the other processes of its launch wait at a barrier until it holds the
lock, and write only their own shard. A second capture into the folder is
refused at once, naming the holder. The kernel drops the lock when the
holding process ends, however it ends, so a killed capture never leaves a
stale lock; the file's text (pid, host, start time, command) only serves the
message of the capture that is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from ..errors import BatchError

LOCK_NAME = ".capture.lock"


@contextlib.contextmanager
def capture_lock(out: Path) -> Iterator[None]:
    """Hold the capture lock of the run directory `out` (which must exist)
    for the `with` block; `BatchError` at once if another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock
        warnings.warn(
            f"This platform has no fcntl.flock, so nothing stops a second capture into {out}; "
            "run one capture per --out folder at a time.",
            stacklevel=3,
        )
        yield
        return
    path = out / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise BatchError(
            f"Cannot create the capture lock {path} ({error.strerror or error}); the --out "
            "folder must be writable. Choose a writable --out."
        ) from error
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BatchError(_held_message(out, path)) from None
        except OSError as error:
            raise BatchError(
                f"Cannot lock {path} ({error.strerror or error}): the file system of --out "
                "does not support locks. Capture into a folder on a local disk, then move it."
            ) from error
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(_holder()).encode())
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # a reader that catches the next holder before it writes
    finally:
        os.close(fd)  # releases the lock


def _holder() -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
    }


def _held_message(out: Path, path: Path) -> str:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        holder = None
    if isinstance(holder, dict) and {"pid", "host", "started"} <= set(holder):
        who = f"process {holder['pid']} on {holder['host']}, started {holder['started']}" + (
            f" (`{holder['command']}`)" if holder.get("command") else ""
        )
    else:
        who = f"a process that has just taken its lock ({path})"
    return (
        f"Another capture is writing into {out}: {who}. Two captures into one folder would "
        "each capture every case. Wait for it to finish (then run this again: it keeps the "
        "runs that one wrote and captures the rest), or pass another --out."
    )

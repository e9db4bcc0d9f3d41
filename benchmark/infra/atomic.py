"""Atomic writes: a temporary file in the target folder, then one rename, so readers never see half a file.

Temporaries are made with :mod:`tempfile`, which creates them readable by their owner only (0600 files, 0700 folders)
whatever the umask; the rename would keep that mode, so every temporary gets the mode a plain ``open`` or ``mkdir``
would have given (0666 or 0777 less the process's umask) before it takes the target's place: a team's shared results
folder or a web server serving reports/ can read what the pipeline writes when the user's umask says so.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmark.infra.errors import BenchmarkError
from benchmark.infra.processes import pid_alive


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` reports a full disk or quota (ENOSPC, EDQUOT), also when a library (pyarrow) only says so in
    its message."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(err, OSError) and "No space left on device" in str(err)


def disk_full_message(target: Path | str | None = None) -> str:
    """The one line for a full disk: what was being written, that nothing was replaced, and the fix."""
    what = f"{target}: " if target is not None else ""
    return (f"{what}the disk is full (No space left on device) while writing; the previous complete file is kept "
            f"(none was replaced) and the partial copy removed; free some space and rerun")


def current_umask() -> int:
    """The process's umask (Linux: read from /proc, so no other thread sees it changed; else set and restored)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def as_if_created(path: Path | str) -> None:
    """Give the file or folder ``path`` the mode ``open``/``mkdir`` would have given it under the current umask."""
    os.chmod(path, (0o777 if os.path.isdir(path) else 0o666) & ~current_umask())


def fresh_dir(beside: Path) -> Path:
    """A new empty folder next to ``beside`` (hidden, named after it) with the mode ``mkdir`` would give; fill it,
    then :func:`replace_dir` it onto ``beside``."""
    beside.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{beside.name}.", dir=beside.parent))
    as_if_created(fresh)
    return fresh


def remove_stale_temporaries(target: Path) -> None:
    """Delete temporary files of ``target`` left by a writer that was killed (its process no longer exists)."""
    for leftover in target.parent.glob(f".{target.name}.*.tmp"):
        pid = leftover.name[len(target.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            leftover.unlink(missing_ok=True)


@contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target``, on error it is removed.

    A SIGKILL leaves ``target`` as it was (the old complete file, or none) plus a temporary file named after the
    writer's pid, which the next write of ``target`` removes. A full disk (ENOSPC) leaves ``target`` as it was too and
    raises BenchmarkError saying so.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    except OSError as err:
        if is_disk_full(err):
            raise BenchmarkError(disk_full_message(target)) from err
        raise
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        as_if_created(tmp)
        os.replace(tmp, target)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if is_disk_full(err):
            raise BenchmarkError(disk_full_message(target)) from err
        raise


def write_bytes(target: Path | str, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: Path | str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    write_bytes(target, text.encode("utf-8"))


def write_json(target: Path | str, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON (byte-identical for equal objects) atomically."""
    write_text(target, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def write_with(target: Path | str, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp_path)`` and move the result onto ``target`` atomically."""
    with atomic_path(target) as tmp:
        writer(tmp)


def replace_dir(fresh: Path, target: Path) -> None:
    """Replace folder ``target`` by the complete folder ``fresh`` (a sibling), so a rerun never leaves stale files in
    it: the old folder is moved aside, ``fresh`` renamed into place, then the old one removed."""
    backup = target.with_name(f".{target.name}.old")
    shutil.rmtree(backup, ignore_errors=True)
    if target.exists():
        os.replace(target, backup)
    os.replace(fresh, target)
    shutil.rmtree(backup, ignore_errors=True)

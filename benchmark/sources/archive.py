"""Unpacking a dataset archive (zip or tar) into the raw image folder, refusing any member that would land outside it.

Every member is checked before anything is written: absolute paths, ``..`` components, links and special files are
refused with one line naming the member. Extraction goes to a temporary folder beside the target, renamed into place
at the end, so a refused or interrupted import leaves nothing behind.
"""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from benchmark.infra import atomic
from benchmark.infra.errors import BenchmarkError


def _check_name(archive: Path, name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and path.parts[0].endswith(":")):
        raise BenchmarkError(f"{archive}: member {name!r} would be written outside the target folder; refusing the "
                             f"archive (repack it with relative paths inside one folder)")


def _members(archive: Path) -> list[str]:
    """Names of the regular files and folders of ``archive``, after checking every member."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                _check_name(archive, info.filename)
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise BenchmarkError(f"{archive}: member {info.filename!r} is a symbolic link; refusing the archive")
            return [i.filename for i in infos]
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for m in members:
                _check_name(archive, m.name)
                if not (m.isfile() or m.isdir()):
                    raise BenchmarkError(f"{archive}: member {m.name!r} is a link or special file; refusing the archive")
            return [m.name for m in members]
    raise BenchmarkError(f"{archive}: not a zip or tar archive; expected .zip, .tar, .tar.gz or .tgz")


def extract(archive: Path | str, target: Path | str) -> Path:
    """Unpack ``archive`` into the new folder ``target`` (which must not exist yet); returns ``target``."""
    archive, target = Path(archive), Path(target)
    if not archive.exists():
        raise BenchmarkError(f"{archive}: archive not found")
    if target.exists():
        raise BenchmarkError(f"{target}: already exists; move it away or choose another target folder")
    _members(archive)
    staging = atomic.fresh_dir(target)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(staging)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(staging, filter="data")
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target

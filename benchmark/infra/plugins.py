"""``module:factory`` plug-ins: how a user's own frozen model or correction method enters without editing the package.

A spec is ``package.module:factory`` (an importable module) or ``path/to/file.py:factory`` (a Python file, relative to
the working directory, e.g. the project root where `dvc repro` runs). The working directory is searched after
``sys.path``, so a module file beside params.yaml is found without setting PYTHONPATH.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmark.infra.errors import BenchmarkError
from benchmark.infra.hashing import sha256_bytes

SPEC_PATTERN = re.compile(r"^(?P<module>[A-Za-z_][\w.]*|[^:]+\.py):(?P<attr>[A-Za-z_]\w*)$")
SPEC_FORM = "module:factory or path/to/file.py:factory"


def is_spec(name: str) -> bool:
    """Whether ``name`` has the form of a plug-in spec (not whether it imports)."""
    return SPEC_PATTERN.match(name) is not None


def _import_file(path: Path, *, where: str, spec: str) -> ModuleType:
    if not path.is_file():
        raise BenchmarkError(f"{where}: {spec!r}: file {path} not found; expected {SPEC_FORM}")
    module_name = f"benchmark_plugin_{path.stem}_{sha256_bytes(str(path.resolve()).encode())[:12]}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    assert loader_spec is not None and loader_spec.loader is not None
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    try:
        loader_spec.loader.exec_module(module)
    except Exception as err:
        del sys.modules[module_name]
        raise BenchmarkError(f"{where}: {spec!r}: importing {path} failed ({type(err).__name__}: "
                             f"{str(err).splitlines()[0][:160] if str(err) else ''})") from err
    return module


def _import_module(name: str, *, where: str, spec: str) -> ModuleType:
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.append(cwd)
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise BenchmarkError(f"{where}: {spec!r}: cannot import module {name!r} ({err}); put it on PYTHONPATH or in the "
                             f"working directory, or give a file: path/to/file.py:factory") from err


def load_factory(spec: str, *, where: str, expects: str) -> Callable[..., Any]:
    """The callable named by ``spec``.

    Parameters
    ----------
    spec : ``module:factory`` or ``path/to/file.py:factory``.
    where : the params key that named it, for messages (e.g. ``train.methods``).
    expects : what the factory should be, for messages (e.g. ``factory(settings) -> Method``).

    Raises BenchmarkError (one line naming ``where``) when the spec is malformed, the module does not import, or the
    attribute is missing or not callable.
    """
    match = SPEC_PATTERN.match(spec)
    if match is None:
        raise BenchmarkError(f"{where}: {spec!r} is not a plug-in spec; expected {SPEC_FORM}")
    module_ref, attr = match["module"], match["attr"]
    if module_ref.endswith(".py"):
        module = _import_file(Path(module_ref), where=where, spec=spec)
    else:
        module = _import_module(module_ref, where=where, spec=spec)
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise BenchmarkError(f"{where}: {spec!r}: {module_ref} has no callable {attr!r}; expected {expects}")
    return factory

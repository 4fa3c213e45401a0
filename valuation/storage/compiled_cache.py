"""Compiled trees cached beside their bundle, and trusted only by their digest.

The bundle stays data: compiled code lives beside it, in `<bundle>.compiled/<target>/`, one object
file per model, and its SHA-256 is recorded on the registry's model version (tag
`compiled_sha256.<target>`), as the bundle's own digest is. Loading reads each file once, checks
those very bytes against the record and hands them to LLVM; a missing file, a file for another
target (another CPU, compiler or LLVM) or one altered since it was recorded is compiled afresh
from the verified bundle, never trusted. Where nothing can be compiled, LightGBM prices.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from valuation import compiled

TAG_PREFIX = "compiled_sha256."
"""Model-version tag per target: JSON {model name: SHA-256 of its object code}."""

log = logging.getLogger(__name__)


def tag(target: str) -> str:
    return f"{TAG_PREFIX}{target}"


def root(bundle: Path) -> Path:
    """Where the compiled code of the bundle at `bundle` is cached, for every target."""
    return bundle.with_name(f"{bundle.name}.compiled")


def folder(bundle: Path, target: str) -> Path:
    return root(bundle) / target


def load(
    bundle: Path,
    models: dict[str, str],
    recorded: dict[str, str],
    record: Callable[[str, str], None],
) -> dict[str, compiled.CompiledTrees] | None:
    """Each model of `models` (name -> LightGBM text, from the verified bundle at `bundle`) as
    compiled trees, from the cache when its digests match `recorded` (the version's tags), else
    compiled now, cached and recorded through `record(tag, value)`. None where this machine cannot
    compile: the caller prices with LightGBM."""
    try:
        target = compiled.target()
        here = folder(bundle, target)
        expected = _recorded(recorded.get(tag(target)))
        codes = {name: _read(here / f"{name}.o") for name in models}
        if expected is None or any(
            code is None or hashlib.sha256(code).hexdigest() != expected.get(name)
            for name, code in codes.items()
        ):
            codes = _compile(here, models, target, record)
        return {
            name: compiled.CompiledTrees(code, _num_feature(models[name]))
            for name, code in codes.items()
        }
    except compiled.CompilerUnavailable as error:
        log.warning("pricing with LightGBM: %s", error)
        return None


def _compile(here: Path, models: dict[str, str], target: str, record) -> dict[str, bytes]:
    codes = {name: compiled.compile_trees(text) for name, text in models.items()}
    digests = {name: hashlib.sha256(code).hexdigest() for name, code in codes.items()}
    try:
        here.mkdir(parents=True, exist_ok=True)
        for name, code in codes.items():
            _write_atomic(here / f"{name}.o", code)
        record(tag(target), json.dumps(digests, sort_keys=True))
    except Exception as error:  # noqa: BLE001 - a cache that cannot be kept costs time, not prices
        # The code just compiled from the verified bundle is used all the same; the next process
        # compiles again instead of trusting a file whose digest is not on record.
        log.warning("compiled trees not cached (%s): the next load compiles again", error)
    return codes


def _recorded(value: str | None) -> dict[str, str] | None:
    try:
        digests = json.loads(value) if value else None
    except ValueError:
        return None
    return digests if isinstance(digests, dict) else None


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _write_atomic(path: Path, data: bytes) -> None:
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            os.unlink(staging)


def _num_feature(model_text: str) -> int:
    """`max_feature_idx=K` in LightGBM's header: K + 1 features."""
    for line in model_text.splitlines():
        if line.startswith("max_feature_idx="):
            return int(line.split("=", 1)[1]) + 1
        if line.startswith("Tree="):
            break
    raise compiled.CompilerUnavailable("the model text has no max_feature_idx")

"""LightGBM's trees compiled to machine code (lleaves, on LLVM), for catalogues and quotes.

A compiled model scores the same trees as LightGBM, summed in the same order in double precision,
so its prices are exactly LightGBM's (tests/valuation/test_compiled.py checks 100,000 random
listings bit for bit); it is about 7-9x faster on a catalogue and a few microseconds per quote.

Compiling (`compile_trees`) needs lleaves and takes seconds; loading compiled code (`CompiledTrees`)
needs only llvmlite and takes milliseconds. Machine code is specific to the CPU and the compiler's
versions (`target`): it is cached per target, beside the bundle, and never trusted without its
digest (valuation/storage/compiled_cache.py). Where compilation is unavailable, LightGBM prices.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import numpy as np

ENTRY = "forest_root"
_PARALLEL_ROWS = 20_000  # below this, one thread: waking others costs more than it saves
_ENTRY_TYPE = ctypes.CFUNCTYPE(
    None,
    ctypes.POINTER(ctypes.c_double),  # rows, row-major
    ctypes.POINTER(ctypes.c_double),  # one output per row
    ctypes.c_int32,  # first row
    ctypes.c_int32,  # end row
)


class CompilerUnavailable(RuntimeError):
    """lleaves or llvmlite cannot be imported or cannot compile here: LightGBM prices instead."""


@cache
def _llvm():
    try:
        import llvmlite.binding as llvm
    except ImportError as error:  # pragma: no cover - llvmlite is a dependency
        raise CompilerUnavailable(f"llvmlite cannot be imported: {error}") from None
    llvm.initialize()
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    return llvm


@cache
def _host_features() -> str:
    try:
        return _llvm().get_host_cpu_features().flatten()
    except RuntimeError:  # LLVM cannot detect them on this CPU
        return ""


def _target_machine():
    """As lleaves builds it: the host's CPU and features, position-independent, large code model
    (needed for forests of ~1,000 trees). A new one each time: an execution engine owns its
    target machine and frees it with itself."""
    llvm = _llvm()
    return llvm.Target.from_triple(llvm.get_process_triple()).create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=_host_features(), reloc="pic", codemodel="large"
    )


@cache
def target() -> str:
    """What compiled code is specific to, as a short digest: the compiler's and LLVM's versions,
    the process triple, the CPU and its features. Code compiled for another target is never
    loaded here."""
    from importlib.metadata import PackageNotFoundError, version

    llvm = _llvm()
    try:
        lleaves_version = version("lleaves")
    except PackageNotFoundError:
        lleaves_version = None
    facts = {
        "lleaves": lleaves_version,
        "llvmlite": version("llvmlite"),
        "llvm": ".".join(map(str, llvm.llvm_version_info)),
        "triple": llvm.get_process_triple(),
        "cpu": llvm.get_host_cpu_name(),
        "features": _host_features(),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


def compile_trees(model_text: str) -> bytes:
    """LightGBM's text model -> object code for this target. One block of trees (lleaves'
    `fblocksize` = the number of trees) keeps LightGBM's order of summation, hence its exact
    prices; raw scores are what our models predict (identity objectives)."""
    try:
        import lleaves
    except ImportError as error:
        raise CompilerUnavailable(f"lleaves cannot be imported: {error}") from None
    with tempfile.TemporaryDirectory(prefix="compile-") as scratch:
        model_file = Path(scratch) / "model.txt"
        model_file.write_text(model_text)
        model = lleaves.Model(model_file=str(model_file))
        object_file = Path(scratch) / "model.o"
        try:
            model.compile(cache=str(object_file), fblocksize=max(model.num_trees(), 1))
        except Exception as error:  # noqa: BLE001 - any LLVM failure means: not compiled here
            raise CompilerUnavailable(f"lleaves could not compile the model: {error}") from None
        return object_file.read_bytes()


class CompiledTrees:
    """Object code from `compile_trees`, loaded into this process: `predict` for many rows,
    `score_row` for one row from a fixed buffer (the quote path)."""

    def __init__(self, object_code: bytes, num_feature: int):
        llvm = _llvm()
        # An empty module whose object code comes from the cache: LLVM compiles nothing here.
        self._engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), _target_machine())
        self._code = bytes(object_code)  # kept alive while the engine may read it
        self._engine.set_object_cache(getbuffer_func=lambda _module: self._code)
        self._engine.finalize_object()
        address = self._engine.get_function_address(ENTRY)
        if not address:
            raise CompilerUnavailable(f"the compiled code has no {ENTRY} function")
        self._entry = _ENTRY_TYPE(address)
        self.num_feature = num_feature

    def predict(self, matrix: np.ndarray, threads: int | None = None) -> np.ndarray:
        """One score per row of `matrix` (n, num_feature), as `Booster.predict` gives it."""
        matrix = np.ascontiguousarray(matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != self.num_feature:
            raise ValueError(f"rows must have {self.num_feature} columns, not {matrix.shape}")
        rows = len(matrix)
        if rows >= 2**31 - 1:
            raise ValueError("score fewer than 2**31 rows at a time")
        out = np.zeros(rows, dtype=np.float64)
        data = matrix.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        result = out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        threads = threads or os.cpu_count() or 1
        if rows < _PARALLEL_ROWS or threads == 1:
            self._entry(data, result, 0, rows)
            return out
        # ctypes releases the GIL during the call: the threads score their slices in parallel.
        edges = np.linspace(0, rows, threads + 1, dtype=np.int64)
        with ThreadPoolExecutor(threads) as pool:
            list(
                pool.map(
                    lambda span: self._entry(data, result, int(span[0]), int(span[1])),
                    zip(edges[:-1], edges[1:], strict=True),
                )
            )
        return out

    def row_scorer(self, buffer: np.ndarray):
        """A function scoring whatever row `buffer` (float64, (1, num_feature)) holds at call
        time; not thread-safe (the caller fills and scores under one lock)."""
        if buffer.dtype != np.float64 or buffer.shape != (1, self.num_feature):
            raise ValueError(f"buffer must be float64 (1, {self.num_feature})")
        out = np.zeros(1, dtype=np.float64)
        data = buffer.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        result = out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        entry = self._entry

        def score() -> float:
            entry(data, result, 0, 1)
            return float(out[0])

        score.keep = (buffer, out)  # the pointers point into these
        return score

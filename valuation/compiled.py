"""LightGBM's trees compiled to machine code (lleaves, on LLVM), for catalogues and quotes.

A compiled model scores the same trees as LightGBM, summed in the same order in double precision,
so its scores are LightGBM's bit for bit (tests/valuation/test_compiled.py checks 100,000 random
listings); it scores a catalogue 10-15x faster and one listing in a few microseconds.

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
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np

ENTRY = "forest_root"
CODE_REVISION = 1
"""Raised when the code generated here changes: code compiled before is then compiled again."""
_COMPILING = threading.Lock()  # the code generator is patched while it runs
_PARALLEL_ROWS = 20_000  # below this, one thread: waking others costs more than it saves
_ARGUMENTS = (
    None,
    ctypes.POINTER(ctypes.c_double),  # rows, row-major
    ctypes.POINTER(ctypes.c_double),  # one output per row
    ctypes.c_int32,  # first row
    ctypes.c_int32,  # end row
)
_ENTRY_TYPE = ctypes.CFUNCTYPE(*_ARGUMENTS)
"""Releases the GIL while it scores: threads score a catalogue's slices in parallel."""
_ROW_ENTRY_TYPE = ctypes.PYFUNCTYPE(*_ARGUMENTS)
"""Keeps the GIL: one row takes microseconds, while giving the GIL up lets any thread waiting
for it run first (up to the interpreter's switch interval, 5 ms): measured on the server, a
quote's two scores cost more than the rest of its valuation that way."""


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
        "code": CODE_REVISION,
        "lleaves": lleaves_version,
        "llvmlite": version("llvmlite"),
        "llvm": ".".join(map(str, llvm.llvm_version_info)),
        "triple": llvm.get_process_triple(),
        "cpu": llvm.get_host_cpu_name(),
        "features": _host_features(),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


def compile_trees(model_text: str) -> bytes:
    """LightGBM's text model -> object code for this target, summing the trees in LightGBM's
    order (`_lightgbm_order`), hence its exact scores. Compiling is not thread-safe."""
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
            with _COMPILING, _lightgbm_order():
                model.compile(cache=str(object_file))
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
        self._row_entry = _ROW_ENTRY_TYPE(address)
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
        entry = self._row_entry

        def score() -> float:
            entry(data, result, 0, 1)
            return float(out[0])

        score.keep = (buffer, out)  # the pointers point into these
        return score


# LightGBM's order of summation, in lleaves' code generator -----------------------------------
#
# lleaves evaluates the trees in blocks (of `fblocksize`, for the instruction cache) and sums each
# block from zero before adding the block's sum to the running total; LightGBM adds each tree to
# the running total in turn. Floating-point addition is not associative, so the last bit of a
# score could differ. `_instruction_block` is lleaves 1.3.0's `_populate_instruction_block`
# (MIT licence, github.com/siboehm/lleaves) with one change: a block after the first starts from
# the running total, so every tree is added in LightGBM's order and the scores are the same bit
# for bit, while compilation and scoring keep the speed of blocks.


def _instruction_block(
    instr_block_idx, forest, root_func, tree_funcs, setup_block, next_block, eval_obj_func, use_fp64
):
    from lleaves.compiler.codegen import codegen as cg

    ir = cg.ir
    data_arr, out_arr, start_index, end_index = root_func.args

    builder = ir.IRBuilder(setup_block)
    start_index = builder.zext(start_index, cg.LONG)
    end_index = builder.zext(end_index, cg.LONG)
    loop_iter = builder.alloca(cg.LONG, 1, "loop-idx")
    builder.store(start_index, loop_iter)
    condition_block = root_func.append_basic_block("loop-condition")
    builder.branch(condition_block)

    builder = ir.IRBuilder(condition_block)
    comp = builder.icmp_signed("<", builder.load(loop_iter), end_index)
    core_block = root_func.append_basic_block("loop-core")
    builder.cbranch(comp, core_block, next_block)

    builder = ir.IRBuilder(core_block)
    args = []
    loop_iter_reg = builder.load(loop_iter)
    n_args = ir.Constant(cg.LONG, forest.n_args)
    iter_mul_nargs = builder.mul(loop_iter_reg, n_args)
    idx = (builder.add(iter_mul_nargs, cg.lconst(i)) for i in range(forest.n_args))
    raw_ptrs = [builder.gep(root_func.args[0], (c,)) for c in idx]
    for feature, ptr in zip(forest.features, raw_ptrs, strict=True):
        el = builder.load(ptr)
        if feature.is_categorical:
            is_nan = builder.fcmp_ordered("uno", el, cg.get_fdtype_const(0.0, use_fp64))
            el = builder.select(is_nan, cg.iconst(-(2**31)), builder.fptosi(el, cg.INT_CAT))
        args.append(el)
    res_idx = builder.mul(cg.lconst(forest.n_classes), loop_iter_reg)
    results_ptr = [
        builder.gep(out_arr, (builder.add(res_idx, cg.lconst(class_idx)),))
        for class_idx in range(forest.n_classes)
    ]
    if instr_block_idx > 0:  # the change: continue the running total, tree by tree
        results = [builder.load(result_ptr) for result_ptr in results_ptr]
    else:
        results = [cg.get_fdtype_const(0.0, use_fp64) for _ in range(forest.n_classes)]
    for func in tree_funcs:
        tree_res = builder.call(func.llvm_function, args)
        results[func.class_id] = builder.fadd(tree_res, results[func.class_id])
    if eval_obj_func:
        results = cg._populate_objective_func_block(
            builder,
            results,
            forest.objective_func,
            forest.objective_func_config,
            forest.raw_score,
            forest.average_output,
            len(forest.trees),
            use_fp64,
        )
    for result, result_ptr in zip(results, results_ptr, strict=True):
        builder.store(result, result_ptr)
    builder.store(builder.add(loop_iter_reg, cg.lconst(1)), loop_iter)
    builder.branch(condition_block)


@contextmanager
def _lightgbm_order():
    from lleaves.compiler.codegen import codegen

    original = codegen._populate_instruction_block
    codegen._populate_instruction_block = _instruction_block
    try:
        yield
    finally:
        codegen._populate_instruction_block = original

"""Single-row scoring through LightGBM's fast C entry point, for the quote path.

`Booster.predict` re-checks and re-converts its input on every call (~35 us for one row of a
300-tree model); LGBM_BoosterPredictForMatSingleRowFast prepares that once and then scores a row
from a fixed buffer (~15 us). Batches keep using `Booster.predict`, which is faster per row.
"""

from __future__ import annotations

import ctypes

import lightgbm as lgb
import numpy as np
from lightgbm.basic import _LIB, _c_str, _safe_call

_PREDICT_NORMAL = 0  # C_API_PREDICT_NORMAL: the raw score of a regression is its prediction
_PREDICT_CONTRIB = 3  # C_API_PREDICT_CONTRIB: per-feature contributions (SHAP), then the base
_DTYPE_FLOAT64 = 1  # C_API_DTYPE_FLOAT64


class RowScorer:
    """Scores whatever row `buffer` (float64, shape (1, n_features)) holds at call time.

    Not thread-safe: the caller fills the buffer and scores under one lock.
    """

    def __init__(self, booster: lgb.Booster, buffer: np.ndarray, contributions: bool = False):
        if buffer.dtype != np.float64 or buffer.shape != (1, booster.num_feature()):
            raise ValueError(f"buffer must be float64 (1, {booster.num_feature()})")
        self._booster = booster  # the fast config points into it: keep it alive
        self._buffer = buffer
        self._config = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(_PREDICT_CONTRIB if contributions else _PREDICT_NORMAL),
                ctypes.c_int(0),
                ctypes.c_int(-1),
                ctypes.c_int(_DTYPE_FLOAT64),
                ctypes.c_int32(buffer.shape[1]),
                _c_str("num_threads=1"),  # one row: no OpenMP team to wake
                ctypes.byref(self._config),
            )
        )
        self._row = buffer.ctypes.data_as(ctypes.c_void_p)
        self._out = np.zeros(buffer.shape[1] + 1 if contributions else 1, dtype=np.float64)
        self._out_ptr = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._out_len = ctypes.c_int64()

    def __call__(self) -> float:
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFast(
                self._config, self._row, ctypes.byref(self._out_len), self._out_ptr
            )
        )
        return float(self._out[0])

    def all(self) -> np.ndarray:
        """Scores the row and returns the whole output (the contributions and the base value)."""
        self()
        return self._out.copy()

    def __del__(self):
        if getattr(self, "_config", None) and self._config.value:
            _LIB.LGBM_FastConfigFree(self._config)
            self._config = None

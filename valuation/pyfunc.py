"""The MLflow face of a valuer: a pyfunc that takes raw listing rows in any accepted spelling.

Logged as "models from code" (see `mlflow_model.py`), so loading it unpickles nothing: the model
is the bundle's LightGBM text files and JSON, read by the same code the service uses.
"""

from __future__ import annotations

import mlflow.pyfunc
import pandas as pd

from valuation.pricing import price_rows
from valuation.valuer import Valuer


class ListingPricer(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.valuer = Valuer.load(context.artifacts["bundle"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return price_rows(self.valuer, pd.DataFrame(model_input))

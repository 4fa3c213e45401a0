"""Models-from-code entry point: MLflow runs this file to build the logged pyfunc. Not imported."""

import mlflow.models

from valuation.pyfunc import ListingPricer

mlflow.models.set_model(ListingPricer())

"""Where models and answers are kept: the record of quotes and sales (SQL), the MLflow registry
and the model bundles it serves."""

"""A run: params.yaml loaded and cross-checked against the registries, the run matrix of methods x splits x seeds, and its MLflow records."""

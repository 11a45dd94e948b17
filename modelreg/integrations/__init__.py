"""Adapters to outside systems. Each submodule imports its third-party library lazily, so importing
``modelreg`` never pulls in MLflow."""

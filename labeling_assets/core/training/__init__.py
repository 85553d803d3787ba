"""Training and model selection: torch/torchvision only (no dagster, mlflow, pandas or sqlalchemy in training code), so it runs on a GPU box that has only torch."""

"""Datasets: frozen stratified splits, the dataset version, its card and its exports."""

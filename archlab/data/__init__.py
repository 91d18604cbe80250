"""Datasets (placeholder created by the data-pipeline engineer; get_dataset lives here)."""

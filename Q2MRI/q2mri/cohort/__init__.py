"""Whole cohorts: simulated BIDS datasets, and the BIDS App (q2mri bids) that runs a pipeline per
subject/session on Dask and aggregates a group table."""

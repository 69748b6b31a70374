"""The q2mri command line."""

"""Q2MRI's web app: trame-slicer over Q2MRIModuleLib's Logic (see app.py)."""

"""q2mri app: the web app (trame-slicer) on this machine's browser port."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import Q2MRIError

MODULE_DIR = Path(__file__).resolve().parents[3] / "Q2MRIModule"


def cmd_app(args) -> None:
    for f in args.files:
        if not Path(f).exists():
            raise Q2MRIError(f"{f}: no such file; give NIfTI/NRRD images or a DICOM folder")
    try:
        import trame_slicer  # noqa: F401
    except ImportError:
        raise Q2MRIError("the web app needs trame-slicer: run it through ./run app, which installs it") from None
    if not (MODULE_DIR / "Q2MRIWeb").is_dir():
        raise Q2MRIError(f"the web app is not in this installation ({MODULE_DIR}); run it from a Q2MRI checkout")
    # Offscreen rendering through EGL (Mesa llvmpipe without a GPU): no X server needed.
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    sys.path.insert(0, str(MODULE_DIR))
    from Q2MRIWeb.app import main
    main([str(Path(f).resolve()) for f in args.files], host=args.host, port=args.port)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("app", help="serve the Q2MRI web app (browser GUI)",
                       description="Serve the Q2MRI web app: slice and 3D views, map prediction with progress and "
                                   "Cancel, ROI statistics, contrast synthesis, downloads. With no files it opens the "
                                   "bundled knee sample.")
    p.add_argument("files", nargs="*", metavar="FILE", help="NIfTI/NRRD images (BIDS sidecars beside them) or DICOM folders")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.set_defaults(func=cmd_app)

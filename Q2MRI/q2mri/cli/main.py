"""q2mri: entry point. User errors become one line on stderr and exit status 2."""
from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from ..errors import Q2MRIError


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with only="app", just that subcommand: the web app starts without
    importing torch and the fitting code the other subcommands need (about 2 s of its start)."""
    p = argparse.ArgumentParser(prog="q2mri", description="Quantitative MRI maps from weighted images: fit, "
                                "synthesize, measure and evaluate. Units: T1/T2/T2* ms, R2* 1/s, B0 Hz, B1 relative, "
                                "PD relative, PDFF %, flip angle degrees, TR/TE/TI ms.")
    p.add_argument("--version", action="version", version=f"q2mri {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    if only == "app":
        from . import app
        app.register(sub)
        return p
    from . import app, bids, dicom, evaluate, fit, mrf, predict, register, roi, simulate, synth, train
    fit.register(sub)
    synth.register(sub)
    roi.register(sub)
    evaluate.register(sub)
    simulate.register(sub)
    train.register(sub)
    predict.register(sub)
    dicom.register(sub)
    bids.register(sub)
    register.register(sub)
    mrf.register(sub)
    app.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    if argv == ["--version"]:          # nothing to import for this
        print(f"q2mri {__version__}")
        return 0
    from ..logs import quiet_third_parties
    quiet_third_parties()
    parser = build_parser("app" if argv[:1] == ["app"] else None)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except Q2MRIError as e:
        print(f"q2mri: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("q2mri: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("q2mri: error: out of memory; give a --mask or a smaller volume", file=sys.stderr)
        return 2
    except Exception as e:  # an internal error: one line unless debugging is asked for
        if os.environ.get("Q2MRI_DEBUG"):
            raise
        print(f"q2mri: internal error: {type(e).__name__}: {e} (set Q2MRI_DEBUG=1 for the traceback and report it)",
              file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: start-up time of the command line (goal < 0.5 s): q2mri --version and --help of
every subcommand, each in a fresh process (the median of 5 runs), and whether torch was
imported on the way (it must not be).

    .venv/bin/python benchmarks/cli_start.py
"""
import statistics
import subprocess
import sys
import time

COMMANDS = [["--version"], ["--help"], ["fit", "--help"], ["fit", "vfa", "--help"], ["fit", "t2star", "--help"],
            ["fit", "t1-ir", "--help"], ["fit", "t2", "--help"], ["fit", "b1-afi", "--help"], ["fit", "b0", "--help"],
            ["fit", "fatwater", "--help"], ["fit", "dixon", "--help"], ["synth", "--help"], ["roi", "--help"],
            ["evaluate", "--help"], ["simulate", "--help"], ["train", "--help"], ["predict", "--help"],
            ["models", "--help"], ["app", "--help"]]
PROBE = ("import sys, runpy; sys.argv = ['q2mri'] + sys.argv[1:]\n"
         "try:\n    from q2mri.cli.main import main; rc = main(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
         "sys.stderr.write('TORCH=%d\\n' % ('torch' in sys.modules))")


def main():
    worst = 0.0
    for cmd in COMMANDS:
        times = []
        torch_loaded = False
        for _ in range(5):
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-c", PROBE, *cmd], capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
            torch_loaded |= "TORCH=1" in r.stderr
        med = statistics.median(times)
        worst = max(worst, med)
        print(f"q2mri {' '.join(cmd):24s} {med:6.3f} s{'  (imported torch!)' if torch_loaded else ''}")
    print(f"slowest {worst:.3f} s; goal < 0.5 s: {'met' if worst < 0.5 else 'NOT met'}")


if __name__ == "__main__":
    main()

"""The command line: ``python -m sweep <command> ...`` (or ``sweep <command>``).

Each command is two small functions: ``add_<command>(subparsers)`` declares
its arguments and sets ``func``; ``cmd_<command>(args)`` does the work and
returns an exit status. Register a new command by appending its ``add_``
function to `COMMANDS`.

Exit status: 0 success; 2 a usage or input error (one line on stderr,
``sweep: error: <message>``, no traceback, nothing written); 130 interrupted.
"""
import argparse
import os
import sys

from sweep import __version__
from sweep.errors import SweepError

PROG = "sweep"


# --------------------------------------------------------------------------- plan

def add_plan(subparsers):
    p = subparsers.add_parser(
        "plan", help="show what a grid file expands to, and an estimate of its wall time",
        description="Validate GRID and show its axes, runs, chunks, total network-epochs, an estimate of the "
                    "wall time on this machine (from a short timed kernel run) and the first runs. "
                    "Writes nothing.")
    p.add_argument("grid", metavar="GRID", help="grid file (TOML)")
    p.add_argument("--rows", type=_non_negative_int, default=5, metavar="N",
                   help="how many runs to show (default 5)")
    p.add_argument("-j", "--jobs", type=_positive_int, default=None, metavar="N",
                   help="workers to assume for the estimate (default: the CPU count, %d here)" % (os.cpu_count() or 1))
    p.add_argument("--no-estimate", action="store_true", help="skip the timed kernel run")
    p.set_defaults(func=cmd_plan)


def cmd_plan(args):
    from sweep.grid import expand, load_grid
    from sweep.plan import calibrate, plan_chunks, report

    grid = load_grid(args.grid)
    runs = expand(grid)
    chunks = plan_chunks(runs, grid.chunk_size)
    estimate, note = None, None
    if args.no_estimate:
        note = "skipped (--no-estimate)"
    else:
        if sys.stderr.isatty():
            print("sweep: timing the kernel for the estimate...", file=sys.stderr, flush=True)
        try:
            estimate = calibrate(grid, runs, chunks, workers=args.jobs)
        except ImportError as exc:
            note = f"unavailable (the kernels cannot be imported: {exc})"
        except Exception as exc:  # the estimate is an aside: never let it hide the plan
            note = f"unavailable (the timed kernel run failed: {type(exc).__name__}: {exc})"
    sys.stdout.write(report(grid, runs, chunks, estimate, note, n_rows=args.rows))
    sys.stdout.flush()
    return 0


# --------------------------------------------------------------------------- parser and main

COMMANDS = [add_plan]


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG, description="Train thousands of tiny sigmoid networks over a grid of hyperparameters.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="<command>")
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv=None):
    """Run the command line; return the exit status (never raises for user errors)."""
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version, or argparse's own usage error (status 2)
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        func = getattr(args, "func", None)
        if func is None:
            parser.print_help(sys.stderr)
            return 2
        return int(func(args) or 0)
    except SweepError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr, flush=True)
        return 130
    except BrokenPipeError:
        # the reader went away (`sweep plan grid.toml | head`): stop quietly
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141

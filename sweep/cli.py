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
import shlex
import sys
import time
import warnings

from sweep import __version__
from sweep.backends import NAMES as BACKENDS
from sweep.errors import SweepError, SweepWarning

PROG = "sweep"


# --------------------------------------------------------------------------- plan

def add_plan(subparsers):
    p = subparsers.add_parser(
        "plan", help="show what a grid file expands to, and an estimate of its wall time",
        description="Validate GRID and show its axes, runs, chunks, total network-epochs, an estimate of the "
                    "wall time on this machine (from a short timed kernel run) and the first runs. "
                    "Writes nothing.")
    p.add_argument("grid", metavar="GRID", help="grid file (TOML)")
    _add_set(p)
    p.add_argument("--rows", type=_non_negative_int, default=5, metavar="N",
                   help="how many runs to show (default 5)")
    p.add_argument("-j", "--jobs", type=_positive_int, default=None, metavar="N",
                   help="workers to assume for the estimate (default: the CPU count, %d here)" % (os.cpu_count() or 1))
    p.add_argument("--no-estimate", action="store_true", help="skip the timed kernel run")
    p.add_argument("--tasks", type=_positive_int, default=None, metavar="N",
                   help="also show the N shards of --shard I/N or sweep slurm --tasks N, with their estimates")
    p.add_argument("--cpus-per-task", type=_positive_int, default=1, metavar="C",
                   help="CPUs per shard for the shards' estimates (default 1)")
    p.set_defaults(func=cmd_plan)


def cmd_plan(args):
    from sweep.grid import load_grid
    from sweep.grid.overrides import from_sets
    from sweep.grid.runs import expand_ordered
    from sweep.plan import calibrate, gpu_present, plan_chunks, report

    overrides = from_sets(args.sets)
    start = time.perf_counter()
    grid = load_grid(args.grid, overrides) if overrides else load_grid(args.grid)
    runs, order = expand_ordered(grid)
    chunks = plan_chunks(runs, grid.chunk_size, grid.datasets, order)
    planning = time.perf_counter() - start  # `sweep run` plans the runs too, before it trains
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
    gpu, gpu_note = None, None
    if not args.no_estimate and gpu_present() and bool(runs["diagnostics"].any()):
        from kernels.cuda import DIAGNOSTICS_ON_CPU

        gpu_note = f"not applicable: {DIAGNOSTICS_ON_CPU}"
    elif not args.no_estimate and gpu_present():
        try:
            gpu = calibrate(grid, runs, chunks, device="cuda")
        except Exception as exc:
            gpu_note = f"unavailable (the timed GPU launch failed: {type(exc).__name__}: {exc})"
    text = report(grid, runs, chunks, estimate, note, n_rows=args.rows, gpu_estimate=gpu, gpu_note=gpu_note,
                  planning=planning)
    if args.tasks:
        from sweep.plan import chunk_cost, shard_report

        text += "\n" + "\n".join(shard_report(chunks, args.tasks, chunk_cost(grid.datasets), estimate,
                                              args.cpus_per_task)) + "\n"
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0


# --------------------------------------------------------------------------- run

def add_run(subparsers):
    p = subparsers.add_parser(
        "run", help="train every run of a grid into a Parquet dataset (resumes where it stopped)",
        description="Train the runs of GRID that are not written yet and write results/<name>/: one Parquet "
                    "part per chunk plus a manifest. Re-running the same command resumes; a grid that "
                    "changed is refused unless --overwrite.")
    _add_grid_and_out(p)
    _add_set(p)
    p.add_argument("-j", "--jobs", type=_positive_int, default=None, metavar="N",
                   help="chunks trained at once (default: the CPU count, %d here)" % (os.cpu_count() or 1))
    p.add_argument("--backend", choices=BACKENDS, default="threads",
                   help="threads over the GIL-free kernels (default), worker processes, the workers of a "
                        "Dask cluster (--scheduler), or this machine's NVIDIA GPU (needs numba-cuda)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="with --backend dask: the scheduler, tcp://HOST:PORT (default: DASK_SCHEDULER_ADDRESS)")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="train only shard I of N (1-based) of the chunks; inside a SLURM array task the "
                        "default is the task's place in the array")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress and no summary")
    p.add_argument("--overwrite", action="store_true",
                   help="replace results of a different grid found under the same name")
    p.set_defaults(func=cmd_run)


def cmd_run(args):
    from sweep.grid.overrides import from_sets
    from sweep.runner import run
    from sweep.shard import parse_shard, shard_from_env

    overrides = from_sets(args.sets)
    shard = parse_shard(args.shard) if args.shard is not None else shard_from_env()
    if args.scheduler and args.backend != "dask":
        raise SweepError(f"--scheduler is for --backend dask (got --backend {args.backend})")
    try:
        summary = run(args.grid, args.out, jobs=args.jobs, backend=args.backend, quiet=args.quiet,
                      overwrite=args.overwrite, shard=shard, scheduler=args.scheduler, overrides=overrides)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; every part written so far is kept. Run the same command again to "
              f"resume: python -m sweep run {' '.join(map(shlex.quote, _resume_args(args)))}",
              file=sys.stderr, flush=True)
        return 130
    if not args.quiet:
        print(summary.text(), file=sys.stderr, flush=True)
    return 0


def _resume_args(args):
    out = [args.grid]
    for text in args.sets:
        out += ["--set", text]
    if args.out != "results":
        out += ["--out", args.out]
    if args.shard:
        out += ["--shard", args.shard]
    if args.backend != "threads":
        out += ["--backend", args.backend]
    if args.scheduler:
        out += ["--scheduler", args.scheduler]
    return out


# --------------------------------------------------------------------------- status

def add_status(subparsers):
    p = subparsers.add_parser(
        "status", help="how much of a sweep is written",
        description="Show parts and runs done of total, for a results directory or a grid file, and any "
                    "part that fails its checks (stamp, rows, schema; with --verify every page and run id). "
                    "Exit 0 when complete, 1 when runs are missing.")
    p.add_argument("target", metavar="RESULTS_DIR|GRID", help="results/<name> or the grid file")
    p.add_argument("-o", "--out", default="results", metavar="DIR", help="results root for a grid file")
    _add_set(p, "with a grid file: the overrides it was run with (so that it finds the same results)")
    p.add_argument("--verify", action="store_true",
                   help="read every part in full: each page against its checksum, its run ids against its "
                        "chunk (a resumed sweep does the same); reads only, moves nothing")
    p.set_defaults(func=cmd_status)


def cmd_status(args):
    from sweep.grid.overrides import from_sets
    from sweep.state import status

    lines, complete = status(args.target, args.out, verify=args.verify, overrides=from_sets(args.sets))
    print("\n".join(lines))
    return 0 if complete else 1


# --------------------------------------------------------------------------- slurm

def add_slurm(subparsers):
    p = subparsers.add_parser(
        "slurm", help="write (and submit) a SLURM array job: task i trains shard i+1 of N",
        description="Write OUT/_NAME/slurm/sweep.sbatch, an sbatch array script whose task i runs "
                    "`sweep run GRID --shard i+1/N`, with one log per task in OUT/_NAME/slurm/logs/, and with "
                    "--submit submit it. The tasks share the results directory; `sweep status` shows each "
                    "shard. A failed or preempted task resumes when re-submitted (--missing).")
    _add_grid_and_out(p)
    p.add_argument("--tasks", type=_positive_int, required=True, metavar="N", help="array tasks (shards)")
    p.add_argument("--partition", default=None, metavar="P", help="SLURM partition (default: the cluster's)")
    p.add_argument("--time", default=None, metavar="T", help="time limit per task, e.g. 30, 2:00:00, 1-00")
    p.add_argument("--cpus-per-task", type=_positive_int, default=1, metavar="C",
                   help="CPUs per task, used as sweep run --jobs (default 1)")
    p.add_argument("--mem", default=None, metavar="M", help="memory per task, e.g. 2G")
    p.add_argument("--submit", action="store_true", help="submit the script with sbatch")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--missing", action="store_true",
                       help="with --submit: only the tasks whose shard is not complete")
    which.add_argument("--only", default=None, metavar="I[,I...]",
                       help="with --submit: only these array task ids (0-based)")
    p.add_argument("--wait", action="store_true", help="with --submit: wait until the job ends (sbatch --wait)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace results of a different grid found under the same name")
    p.set_defaults(func=cmd_slurm)


def cmd_slurm(args):
    from sweep import slurm
    from sweep.lock import Writer
    from sweep.runner import existing_manifest, open_results, prepare

    slurm.check_options(args.tasks, args.partition, args.time, args.cpus_per_task, args.mem, grid=args.grid,
                        out=args.out)
    if (args.missing or args.only or args.wait) and not args.submit:
        raise SweepError("--missing, --only and --wait go with --submit")
    only = None
    if args.only is not None:
        try:
            only = sorted({int(part) for part in args.only.split(",") if part.strip()})
        except ValueError:
            raise SweepError(f"--only {args.only!r} is not a comma-separated list of task ids") from None
        if not only or only[0] < 0 or only[-1] >= args.tasks:
            raise SweepError(f"--only {args.only!r}: task ids go from 0 to {args.tasks - 1}")
    prepared = prepare(args.grid, args.out)
    slurm.check_tasks(args.tasks, len(prepared.chunks))  # before anything is written
    manifest = existing_manifest(prepared, overwrite=args.overwrite)
    if manifest is None:  # a new sweep (or --overwrite): write its manifest, as the directory's only writer
        with Writer(prepared.layout, grid_hash=prepared.grid_hash) as writer:
            open_results(prepared, writer, overwrite=args.overwrite)
    else:
        prepared.manifest = manifest
    script = slurm.write_job(prepared, args.grid, args.out, args.tasks, partition=args.partition,
                             time=args.time, cpus_per_task=args.cpus_per_task, mem=args.mem)
    print(f"{PROG}: wrote {script} ({args.tasks} tasks, {len(prepared.chunks)} chunks, "
          f"{len(prepared.runs):,} runs); logs in {script.parent / 'logs'}/")
    if not args.submit:
        print(f"{PROG}: submit it with: sbatch {script}   (or: the same sweep slurm command with --submit)")
        return 0
    array = only
    if args.missing:
        array = slurm.incomplete_tasks(prepared.layout, slurm.read_tasks(prepared.layout))
        if not array:
            print(f"{PROG}: nothing to submit: every shard is complete")
            return 0
    job_id, rc = slurm.submit(prepared.layout, script, array=array, wait=args.wait)
    which = f"tasks {','.join(map(str, array))}" if array is not None else f"{args.tasks} tasks"
    print(f"{PROG}: submitted job {job_id} ({which})")
    if args.wait:
        print(f"{PROG}: job {job_id} ended" + (f" with exit status {rc}" if rc else ""))
        return 0 if rc == 0 else 1
    print(f"{PROG}: follow it with: squeue -j {job_id}; tail -f {script.parent / 'logs'}/task-*.out; "
          f"python -m sweep status {prepared.outdir}")
    return 0


# --------------------------------------------------------------------------- summary

def add_summary(subparsers):
    p = subparsers.add_parser(
        "summary", help="convergence rate, epochs to converge and outcomes, per group of runs",
        description="Per group of runs of a results directory: runs, convergence rate with a 95% Wilson "
                    "interval, the median epochs to a solution over all runs with its 95% interval, the least "
                    "expected epochs with restarts, the share of each outcome and the median final MSE "
                    "(docs/statistics.md). Groups default to every parameter that varies (seed excepted), in "
                    "the grid's axis order. The table fits 100 columns; --wide shows every column.")
    p.add_argument("results", metavar="RESULTS_DIR", help="results/<name>")
    p.add_argument("--by", default=None, metavar="COL[,COL...]",
                   help="parameter columns to group by, comma-separated (default: those that vary, but seed)")
    _add_where(p)
    p.add_argument("--format", dest="fmt", choices=("table", "markdown", "csv", "json"), default="table",
                   help="output format (default: table)")
    p.add_argument("--wide", action="store_true",
                   help="table and markdown: every column, however wide (default: what fits 100 columns)")
    p.set_defaults(func=cmd_summary)


def cmd_summary(args):
    from sweep.results import load, select
    from sweep.summary import axes_of, format_summary, summarize

    by = None
    if args.by is not None:
        by = [name.strip() for name in args.by.split(",") if name.strip()]
    df = select(load(args.results), args.where)
    summary = summarize(df, by=by, axes=axes_of(args.results) if by is None else None)
    sys.stdout.write(format_summary(summary, args.fmt, wide=args.wide))
    sys.stdout.flush()
    return 0


# --------------------------------------------------------------------------- plot

def add_plot(subparsers):
    p = subparsers.add_parser(
        "plot", help="figures of a sweep: convergence and epochs heatmaps, fraction solved, loss curves "
                     "(needs matplotlib)",
        description="Write one figure of a results directory: heatmaps of the convergence rate and of the "
                    "median epochs to converge over init_scale x learning rate, one panel per loss; the "
                    "fraction of runs solved by each epoch and the loss curves (median and 25-75% band over "
                    "seeds, from the checkpoints) per init_scale; with --facet, split by one or two more "
                    "columns. Needs matplotlib (pip install matplotlib).")
    p.add_argument("results", metavar="RESULTS_DIR", help="results/<name>")
    p.add_argument("-o", "--output", default=None, metavar="FILE",
                   help="figure file; the format follows its extension (.png, .pdf, .svg) "
                        "(default: OUT/_NAME/figure.png, beside the results directory OUT/NAME)")
    p.add_argument("--lr", type=float, default=None, metavar="LR",
                   help="learning rate of the fraction-solved and loss curves (default: the one with the highest "
                        "convergence rate)")
    p.add_argument("--facet", default=None, metavar="COL[,COL]",
                   help="split the figure by a parameter column: one row of panels per value (heatmaps: one "
                        "group of rows per value); a second column gives one column of panels per value, "
                        "e.g. --facet hidden,momentum")
    _add_where(p)
    p.add_argument("--no-curves", action="store_true", help="leave the loss-curve row out")
    p.add_argument("--curvature", action="store_true",
                   help="the curvature figure of runs with diagnostics instead: sharpness over training with the "
                        "edge of stability, the lazy/catapult phases against lr x lambda_0, the sharpness at the "
                        "start and the end against lr (docs/curvature.md)")
    p.add_argument("--dpi", type=_positive_int, default=200, metavar="N", help="resolution (default 200)")
    p.set_defaults(func=cmd_plot)


def cmd_plot(args):
    from sweep.plots import _matplotlib, facet_columns, plot_sweep
    from sweep.results import load, select
    from sweep.store import Layout, make_dir, read_manifest

    _matplotlib()  # a missing matplotlib is reported before anything is read
    df = select(load(args.results), args.where)
    if args.curvature and (args.facet or args.lr is not None or args.no_curves):
        raise SweepError("--curvature draws its own panels: it takes no --facet, --lr or --no-curves")
    facet_columns(df, args.facet)  # a bad column is reported before anything is drawn
    layout = Layout(args.results)
    name = read_manifest(layout)[0].get("name") or layout.data.resolve().name
    if args.output:
        out = _figure_path(args.output, layout)
    else:
        default = layout.curvature_figure if args.curvature else layout.figure
        out = make_dir(layout.admin, "directory") / default.name
    if args.curvature:
        from sweep.curvature_plots import plot_curvature

        plot_curvature(df, name, out, dpi=args.dpi)
    else:
        plot_sweep(df, name, out, lr=args.lr, curves=not args.no_curves, dpi=args.dpi, facet=args.facet)
    print(f"{PROG}: plots of {name} in {out}", file=sys.stderr, flush=True)
    return 0


def _figure_path(output, layout):
    """The path of -o OUTPUT for a figure: .png added without a suffix (what matplotlib would write), a format
    matplotlib writes, an existing directory, outside the results directory; else a SweepError."""
    from pathlib import Path

    out = Path(output)
    if not out.suffix:
        out = out.with_name(out.name + ".png")
    formats = _figure_formats()
    if out.suffix[1:].lower() not in formats:
        raise SweepError(f"-o {output}: matplotlib cannot write .{out.suffix[1:]} files; expected one of "
                         f"{', '.join('.' + f for f in sorted(formats))}")
    if not out.parent.is_dir():
        raise SweepError(f"cannot write {out}: the directory {out.parent} does not exist")
    if out.resolve().is_relative_to(layout.data.resolve()):
        raise SweepError(f"will not write {out} into the results directory: it holds Parquet files only, so "
                         f"that pandas, pyarrow, Polars and DuckDB read it as it is; write it elsewhere")
    return out


def _figure_formats():
    from matplotlib.backend_bases import FigureCanvasBase

    return FigureCanvasBase.get_supported_filetypes()


# --------------------------------------------------------------------------- map

def add_map(subparsers):
    p = subparsers.add_parser(
        "map", help="a trainability map: one pixel per run over two grid columns (needs matplotlib)",
        description="Draw one pixel per run over two numeric columns (e.g. lr_hidden x lr_output, up to 4096 "
                    "values each, every point at most once), coloured by trainability (rank-stretched: trained "
                    "blue, diverged or stuck red), a true/false column or another numeric column; grey where "
                    "there is no data. With --dimension, also estimate the box-counting dimension of the "
                    "boundary between trained and not trained. Needs matplotlib (pip install matplotlib).")
    p.add_argument("results", metavar="RESULTS_DIR", help="results/<name>")
    p.add_argument("--x", required=True, metavar="COL", help="the column along x, e.g. lr_hidden")
    p.add_argument("--y", required=True, metavar="COL", help="the column along y, e.g. lr_output")
    p.add_argument("--color", default="trainability", metavar="COL",
                   help="the colour: trainability (default), a true/false column such as converged, or another "
                        "numeric column such as final_loss")
    _add_where(p)
    p.add_argument("-o", "--output", default=None, metavar="FILE",
                   help="figure file; the format follows its extension (.png, .pdf, .svg) "
                        "(default: OUT/_NAME/map-COLOR.png, beside the results directory OUT/NAME)")
    p.add_argument("--dimension", action="store_true",
                   help="print the box-counting dimension of the trained/not-trained boundary and write its fit "
                        "plot beside the map as FILE-dimension.EXT")
    p.add_argument("--dpi", type=_positive_int, default=None, metavar="N",
                   help="resolution (default: enough for one pixel per grid point, at least 150)")
    p.set_defaults(func=cmd_map)


def cmd_map(args):
    from sweep import maps
    from sweep.plots import _matplotlib
    from sweep.store import make_dir, read_manifest, require_results_dir
    from sweep.summary import axes_of

    _matplotlib()  # a missing matplotlib is reported before anything is read
    layout = require_results_dir(args.results)
    if args.output:
        out = _figure_path(args.output, layout)
    else:
        out = None
    df = maps.map_frame(args.results, args.x, args.y, args.color, args.where)
    name = (read_manifest(layout) or [{}])[0].get("name") or layout.data.resolve().name
    fig = maps.draw(df, x=args.x, y=args.y, color=args.color, name=name, dimension=args.dimension, dpi=args.dpi,
                    axes=axes_of(args.results))
    del df
    if out is None:
        out = make_dir(layout.admin, "directory") / f"map-{args.color}.png"
    written = [out]
    try:
        fig.savefig(out, dpi=fig.dpi)
        if fig.dimension is not None:
            written.append(out.with_name(f"{out.stem}-dimension{out.suffix}"))
            fig.dimension_figure.savefig(written[-1], dpi=150)
    except OSError as exc:
        raise SweepError(f"cannot write {written[-1]}: {exc.strerror or exc}") from None
    if fig.dimension is not None:
        print(fig.dimension.text(maps.boundary_name(fig.map_image)))
        print(fig.dimension.counts_text(), flush=True)
    print(f"{PROG}: map of {name} in {out}"
          + (f", its box-counting fit in {written[1]}" if len(written) > 1 else ""), file=sys.stderr, flush=True)
    return 0


# --------------------------------------------------------------------------- parser and main

def _add_grid_and_out(p):
    p.add_argument("grid", metavar="GRID", help="grid file (TOML)")
    p.add_argument("-o", "--out", default="results", metavar="DIR",
                   help="results root; the sweep goes to DIR/<name>/ (default: results)")


def _add_set(p, help=None):
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help=help or "override a run parameter or a setting of GRID (repeatable), VALUE in TOML syntax: "
                                "one value fixes it, a list or a generator table makes it an axis, wherever GRID "
                                "had it; e.g. --set epochs=2000 --set 'lr=[0.1, 1.0]' --set name=quick "
                                "--set 'seed={range=[0, 10]}'")


def _add_where(p):
    p.add_argument("--where", default=None, metavar="EXPR",
                   help="only the runs for which this filter holds, e.g. \"lr == 1 and loss == 'bce'\": column names, "
                        "numbers, strings, true/false, == != < <= > >=, in [...], and, or, not, parentheses "
                        "(parsed, never run as code)")


COMMANDS = [add_plan, add_run, add_status, add_slurm, add_summary, add_plot, add_map]


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


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Our warnings as one line, `sweep: warning: ...`; others as Python prints them."""
    if issubclass(category, SweepWarning):
        print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors on one line, as every other error of sweep."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(str(message).split())} (see {self.prog} --help)\n")


def build_parser():
    parser = _Parser(
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
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
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

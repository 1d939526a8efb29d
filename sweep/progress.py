"""Progress of a sweep: a tqdm bar on a terminal, a notebook bar in Jupyter, plain periodic lines otherwise."""
import os
import sys
import time


def _fmt_rate(x):
    return f"{x:.3g}" if x < 1e4 else f"{x:.2e}"


def _fmt_seconds(s):
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _terminal_columns(stream):
    """Width of the terminal `stream` writes to; 0 if it is not a terminal (or has no size)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns if stream.isatty() else 0
    except (AttributeError, OSError, ValueError):
        return 0


def in_notebook():
    """Whether this runs in a Jupyter kernel (whose stderr is no terminal, but shows a notebook bar)."""
    ipython = sys.modules.get("IPython")  # never imported here: a kernel has imported it already
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
        return shell is not None and "IPKernelApp" in shell.config
    except Exception:  # an IPython too old or too odd to tell: no notebook bar
        return False


def _notebook_bar(**options):
    """tqdm's notebook bar (an ipywidgets widget); its plain bar where ipywidgets is missing (as tqdm.auto)."""
    try:
        from tqdm.notebook import tqdm

        return tqdm(**options)
    except ImportError:
        from tqdm import tqdm

        return tqdm(**options)


class Progress:
    """Counts runs and network-epochs done; shows rates and an ETA.

    On a terminal: a tqdm bar. In a Jupyter notebook (writing to its stderr):
    tqdm's notebook bar. Elsewhere (logs, CI, SLURM): one line every
    `interval` seconds and a last one at the end. Nothing when quiet.
    """

    def __init__(self, total_runs, total_net_epochs, *, done_runs=0, quiet=False, stream=None, interval=10.0,
                 label="sweep", notebook=None):
        """total_net_epochs: the work still to do; done_runs: runs already done (a resumed sweep);
        notebook: show a notebook bar (default: in a Jupyter kernel, when writing to its stderr)."""
        self.stream = stream or sys.stderr
        self.total_runs = total_runs
        self.total_net_epochs = total_net_epochs
        self.done_runs = done_runs
        self.runs = done_runs
        self.net_epochs = 0
        self.trained = 0
        self.start = time.perf_counter()
        self.interval = interval
        self.label = label
        self._last_line = self.start
        self._bar = None
        self.quiet = quiet
        if quiet:
            return
        options = dict(total=total_runs, initial=done_runs, unit="run", file=self.stream, dynamic_ncols=True,
                       smoothing=0.05, desc=label)
        if _terminal_columns(self.stream) > 0:
            from tqdm import tqdm

            self._bar = tqdm(**options)
        elif notebook or (notebook is None and self.stream is sys.stderr and in_notebook()):
            self._bar = _notebook_bar(**options)

    @property
    def elapsed(self):
        return time.perf_counter() - self.start

    def update(self, runs, net_epochs, trained=None):
        """runs and planned network-epochs done; `trained`: the network-epochs actually
        run (fewer with early stop), for the rate; the ETA goes by the plan."""
        self.runs += runs
        self.net_epochs += net_epochs
        self.trained += net_epochs if trained is None else trained
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.update(runs)
            self._bar.set_postfix_str(f"{_fmt_rate(self.trained / max(self.elapsed, 1e-9))} net-epochs/s",
                                      refresh=False)
            return
        now = time.perf_counter()
        if now - self._last_line >= self.interval or self.runs >= self.total_runs:
            self._last_line = now
            print(self.line(), file=self.stream, flush=True)

    def line(self):
        el = max(self.elapsed, 1e-9)
        pct = 100.0 * self.runs / self.total_runs if self.total_runs else 100.0
        rate = self.trained / el  # of this session's work: runs done before are not counted
        planned_rate = self.net_epochs / el
        left = self.total_net_epochs - self.net_epochs
        eta = _fmt_seconds(left / planned_rate) if planned_rate > 0 and left > 0 else "0:00"
        return (f"{self.label}: {self.runs:,}/{self.total_runs:,} runs ({pct:.0f}%), "
                f"{_fmt_rate((self.runs - self.done_runs) / el)} runs/s, {_fmt_rate(rate)} net-epochs/s, "
                f"elapsed {_fmt_seconds(el)}, ETA {eta}")

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

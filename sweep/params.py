"""The run parameters: name, type, default, allowed values, documentation.

This table is the single source of truth for defaults, validation and the
parameter reference in docs/parameters.md (`markdown_table()` renders it; tests/test_docs.py checks it). Parameter
names are also the Parquet column names of the results.

`Param.check(value)` validates one TOML value and returns its canonical
form (the form that is hashed into `run_id`): floats as Python floats
(integers accepted, ``-0.0`` becomes ``0.0``), integers as Python ints
(a float is accepted only when it is exactly integral: ``epochs = 1e4`` is
10000, ``epochs = 2.5`` is an error), strings exactly as listed, booleans
as booleans (a boolean is never a number). NaN and infinities are refused
everywhere. Errors are `GridError`s without a file or key; the grid loader
adds them.
"""
import difflib
import math
import re
from dataclasses import dataclass, field

from kernels.vocab import (ACTIVATIONS, CRITERIA, DTYPES, INIT_SCHEMES as INITS, LOSSES, MAX_HIDDEN, MAX_SAMPLES,
                           OPTIMIZERS, OUTPUTS, REDUCTIONS, SCALINGS)
from sweep.errors import GridError

BUILTIN_DATASETS = ("xor", "and", "or", "nand", "xnor", "parity3")

MAX_EPOCHS = 1_000_000_000
MAX_SEED = 2**32 - 1  # np.random.RandomState (the numpy-legacy schemes) takes seeds below 2**32
MAX_CHECKPOINTS = 1000

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def describe(value):
    """A value as a user wrote it in TOML, short, for error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:37] + "...")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        text = str(value)
        return text if len(text) <= 30 else f"{text[:12]}...({len(text)} digits)"
    if isinstance(value, list):
        text = "[" + ", ".join(describe(v) for v in value[:6]) + (", ..." if len(value) > 6 else "") + "]"
        return text if len(text) <= 60 else f"a list of {len(value)} values"
    if isinstance(value, dict):
        keys = [k if re.fullmatch(r"[A-Za-z0-9_-]{1,20}", k) else repr(k[:20]) for k in list(value)[:4]]
        return "a table {" + ", ".join(keys) + (", ...}" if len(value) > 4 else "}")
    return f"a {type(value).__name__.replace('datetime', 'date-time')} ({value})"


def suggest(word, candidates, aliases=None):
    """' (did you mean 'x'?)' for a likely typo of one of `candidates`, else ''."""
    if aliases and word in aliases:
        return f" (did you mean {aliases[word]!r}?)"
    lowered = {c.lower(): c for c in candidates}
    if isinstance(word, str) and word.lower() in lowered:
        return f" (did you mean {lowered[word.lower()]!r}?)"
    close = difflib.get_close_matches(str(word), list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def to_float(value, expected):
    """A finite Python float from an int or float; GridError otherwise."""
    if not is_number(value):
        raise GridError(f"expected {expected}, got {describe(value)}")
    try:
        out = float(value)
    except OverflowError:
        raise GridError(f"expected {expected}, got {describe(value)} (too large)") from None
    if not math.isfinite(out):
        raise GridError(f"expected {expected}, got {describe(value)}")
    return out + 0.0  # -0.0 -> 0.0: the same run however zero is written


def to_int(value, expected):
    """A Python int from an int or an exactly integral float; GridError otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise GridError(f"expected {expected}, got {describe(value)}")


@dataclass(frozen=True)
class Param:
    """One parameter (or top-level setting) of a grid file.

    kind: 'float', 'int', 'choice', 'bool', 'checkpoints', 'dataset', 'name', 'text', 'bias_init' (a number
    or "draw"). A 'float' whose default is None (lr_hidden, lr_output) takes its value from another
    parameter when not given (see sweep.grid.runs).
    lo/hi: bounds for numbers; lo_open/hi_open make them strict.
    aliases: other names people may write for it (for "did you mean").
    """

    name: str
    kind: str
    default: object
    doc: str
    lo: float = None
    hi: float = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple = ()
    aliases: tuple = field(default=())

    @property
    def expected(self):
        """What a valid value looks like, in words ('a number > 0')."""
        if self.kind in ("float", "int"):
            noun = "a number" if self.kind == "float" else "an integer"
            lo, hi = self._fmt(self.lo), self._fmt(self.hi)
            if self.lo is not None and self.hi is not None:
                return f"{noun} in {'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"
            if self.lo is not None:
                return f"{noun} {'>' if self.lo_open else '>='} {lo}"
            if self.hi is not None:
                return f"{noun} {'<' if self.hi_open else '<='} {hi}"
            return "a finite number" if self.kind == "float" else "an integer"
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "bool":
            return "true or false"
        if self.kind == "checkpoints":
            return (f"an integer in [0, {MAX_CHECKPOINTS}] (how many log-spaced epochs) "
                    f"or a list of epochs in [0, epochs]")
        if self.kind == "dataset":
            return "a dataset name (" + ", ".join(repr(c) for c in BUILTIN_DATASETS) + ", or one of [datasets])"
        if self.kind == "name":
            return "a name of letters, digits, '.', '_' or '-' (at most 100, not starting with '.', '_' or '-')"
        if self.kind == "text":
            return "a string"
        if self.kind == "bias_init":
            return 'a finite number or "draw"'
        if self.kind == "columns":
            return "a list of result columns (those of docs/results.md but run_id and the parameters)"
        raise AssertionError(self.kind)

    @staticmethod
    def _fmt(x):
        if x is None:
            return None
        if isinstance(x, int) and abs(x) >= 10_000:
            return f"{x:_}"
        return repr(x) if isinstance(x, float) else str(x)

    def _in_range(self, x):
        if self.lo is not None and (x < self.lo or (self.lo_open and x == self.lo)):
            return False
        if self.hi is not None and (x > self.hi or (self.hi_open and x == self.hi)):
            return False
        return True

    def check(self, value):
        """The canonical form of `value`, or GridError saying what was expected."""
        kind = self.kind
        if value is None and self.default is None and kind == "float":
            return None  # not given: resolved from another parameter
        if kind == "bias_init":
            if value == "draw" and isinstance(value, str):
                return value
            if isinstance(value, str):
                raise GridError(f"expected {self.expected}, got {describe(value)}{suggest(value, ('draw',))}")
            kind = "float"
        if kind == "float":
            x = to_float(value, self.expected)
        elif kind == "int":
            x = to_int(value, self.expected)
        elif kind == "bool":
            if not isinstance(value, bool):
                raise GridError(f"expected {self.expected}, got {describe(value)}")
            return value
        elif kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                hint = suggest(value, self.choices) if isinstance(value, str) else ""
                raise GridError(f"expected {self.expected}, got {describe(value)}{hint}")
            return value
        elif kind in ("dataset", "text"):
            if not isinstance(value, str) or (kind == "dataset" and not value):
                raise GridError(f"expected {self.expected}, got {describe(value)}")
            return value
        elif kind == "name":
            if not isinstance(value, str) or not NAME_RE.match(value):
                raise GridError(f"expected {self.expected}, got {describe(value)}")
            return value
        elif kind == "checkpoints":
            return self._check_checkpoints(value)
        elif kind == "columns":
            return self._check_columns(value)
        else:  # pragma: no cover - the table below only uses the kinds above
            raise AssertionError(kind)
        if not self._in_range(x):
            raise GridError(f"expected {self.expected}, got {describe(value)}")
        return x

    def _check_columns(self, value):
        """A tuple of result columns, in the order of the results' schema."""
        from sweep.collect import RECORDABLE

        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise GridError(f"expected {self.expected}, e.g. [\"trainability\", \"epoch_diverged\"]; "
                            f"got {describe(value)}")
        for v in value:
            if v not in RECORDABLE:
                what = "a parameter: parameter columns are always stored" if v in PARAM or v == "run_id" else \
                    f"not a result column{suggest(v, RECORDABLE)}"
                raise GridError(f"{v!r} is {what}; the result columns are {', '.join(RECORDABLE)}")
        repeated = [v for v in dict.fromkeys(value) if value.count(v) > 1]
        if repeated:
            raise GridError(f"{repeated[0]!r} is listed twice; list each column once")
        return tuple(c for c in RECORDABLE if c in value)

    def _check_checkpoints(self, value):
        if isinstance(value, list):
            if len(value) > MAX_CHECKPOINTS:
                raise GridError(f"expected at most {MAX_CHECKPOINTS} checkpoint epochs, got {len(value)}")
            epochs = []
            for i, v in enumerate(value):
                try:
                    e = to_int(v, f"an epoch: an integer in [0, {MAX_EPOCHS:_}]")
                except GridError as exc:
                    raise exc.under(f"[{i}]") from None
                if not 0 <= e <= MAX_EPOCHS:
                    raise GridError(f"expected an epoch: an integer in [0, {MAX_EPOCHS:_}], got {describe(v)}",
                                    key=f"[{i}]")
                epochs.append(e)
            # an explicit list is a set of epochs: order and repeats do not matter
            return tuple(sorted(set(epochs))) if epochs else 0
        x = to_int(value, self.expected)
        if not 0 <= x <= MAX_CHECKPOINTS:
            raise GridError(f"expected {self.expected}, got {describe(value)}")
        return x


PARAMS = (
    Param("dataset", "dataset", "xor",
          "Training data: a built-in boolean function (`xor`, `and`, `or`, `nand`, `xnor` on 2 inputs, "
          "`parity3` on 3) or the name of an inline `[datasets.NAME]` table.",
          aliases=("data", "task", "problem")),
    Param("hidden", "int", 4, "Width of the hidden layer.", lo=1, hi=MAX_HIDDEN,
          aliases=("hidden_size", "n_hidden", "hidden_units", "width", "h")),
    Param("activation", "choice", "sigmoid",
          "Activation of the hidden units: `sigmoid`, `tanh`, `relu` (max(z, 0)) or `identity` (a linear layer).",
          choices=ACTIVATIONS, aliases=("act", "activation_fn", "nonlinearity", "hidden_activation")),
    Param("output", "choice", "sigmoid",
          "The output unit: `sigmoid` (targets in [0, 1]) or `identity` (linear, for regression; not with `bce`).",
          choices=OUTPUTS, aliases=("output_activation", "out", "head")),
    Param("bias", "bool", True, "Whether the layers have biases (`false`: none drawn, trained or stored).",
          aliases=("biases", "use_bias", "with_bias")),
    Param("scaling", "choice", "standard",
          "Parameterisation: `standard` (z1 = X W1 + b1, z2 = a1 W2 + b2), `ntk` (X W1 / sqrt(D), a1 W2 / sqrt(H)) "
          "or `mean-field` (X W1 / sqrt(D), a1 W2 / H); the gradients follow the scaled forward pass.",
          choices=SCALINGS, aliases=("parameterization", "parametrization", "parameterisation", "param")),
    Param("reduction", "choice", "sum",
          "The gradient over samples: `sum` (the notebooks') or `mean` (divided by the number of samples, so "
          "published learning rates work as printed). The reported losses are means either way.",
          choices=REDUCTIONS, aliases=("grad_reduction", "average", "batch_mean")),
    Param("epochs", "int", 10000, "Passes over the data set per run: one update each with the full batch, one per "
          "minibatch with `batch_size` (an upper bound with `early_stop`).",
          lo=1, hi=MAX_EPOCHS, aliases=("n_epochs", "num_epochs", "iterations", "steps", "epoch")),
    Param("lr", "float", 0.1,
          "Learning rate: `W -= lr * dW` every update (gradients summed over samples, as in the notebooks); "
          "the step size of every optimizer.",
          lo=0, lo_open=True,
          aliases=("learning_rate", "eta", "rate", "step_size", "alpha")),
    Param("lr_hidden", "float", None,
          "Learning rate of the hidden layer (W1, b1); `lr` when not given. Rows hold the resolved value.",
          lo=0, lo_open=True, aliases=("lr1", "lr_in", "lr_first", "hidden_lr", "learning_rate_hidden")),
    Param("lr_output", "float", None,
          "Learning rate of the output layer (W2, b2); `lr` when not given. Rows hold the resolved value; "
          "`lr` is null in rows whose two layers have different rates.",
          lo=0, lo_open=True, aliases=("lr2", "lr_out", "lr_last", "output_lr", "learning_rate_output")),
    Param("loss", "choice", "mse",
          "`mse` (gradient (a - y) a (1 - a), summed over samples; reported as mean((y - a)^2)) or `bce` "
          "(cross-entropy with `bce_eps` inside the logs, as in the notebooks).",
          choices=LOSSES, aliases=("loss_fn", "objective", "cost")),
    Param("bce_eps", "float", 1e-8, "The epsilon inside the logs of `bce` and its gradient (0 gives a - y).",
          lo=0, hi=1, hi_open=True, aliases=("eps", "epsilon")),
    Param("momentum", "float", 0.0,
          "Momentum of `gd` (heavy ball: v = momentum * v + dW; W -= lr * v) and `nesterov`. 0 is plain gradient "
          "descent. Other optimizers: 0 (it does not apply).",
          lo=0, hi=1, hi_open=True, aliases=("beta", "mu")),
    Param("optimizer", "choice", "gd",
          "`gd` (gradient descent, with `momentum` as heavy ball), `nesterov`, `adam`, `adamw` (decoupled weight "
          "decay) or `rmsprop`: torch.optim's update forms (docs/optimizers.md).",
          choices=OPTIMIZERS, aliases=("optim", "opt", "method", "update_rule", "solver")),
    Param("beta1", "float", 0.9, "Decay of Adam's and AdamW's first moment. Other optimizers: null.",
          lo=0, hi=1, hi_open=True, aliases=("b1", "adam_beta1", "beta_1")),
    Param("beta2", "float", 0.999,
          "Decay of the second moment: Adam's and AdamW's beta2, RMSprop's alpha. Other optimizers: null.",
          lo=0, hi=1, hi_open=True, aliases=("b2", "adam_beta2", "beta_2", "rho", "rmsprop_alpha")),
    Param("opt_eps", "float", 1e-8,
          "The epsilon added to the root of the second moment (Adam, AdamW, RMSprop). Other optimizers: null.",
          lo=0, aliases=("adam_eps", "optimizer_eps", "epsilon_adam")),
    Param("weight_decay", "float", 0.0,
          "L2 weight decay: `weight_decay * W` added to the gradient, or (adamw) W shrunk by `1 - lr * "
          "weight_decay` before the step. Weights only, unless `decay_biases`.",
          lo=0, aliases=("wd", "l2", "decay", "l2_penalty")),
    Param("decay_biases", "bool", False,
          "Biases decay too. Runs without weight decay or without biases: false (it does not apply).",
          aliases=("decay_bias", "bias_decay", "weight_decay_biases")),
    Param("batch_size", "int", 0,
          "Samples per update: 0 = the whole data set (full batch); 1 = online, one sample per update; k = "
          "minibatches of k, the last one smaller when k does not divide the data set (k >= its size: one batch).",
          lo=0, hi=MAX_SAMPLES, aliases=("minibatch", "minibatch_size", "mini_batch", "bs", "batch")),
    Param("shuffle", "bool", False,
          "Minibatches: a new order of the samples every epoch, drawn from the run's seed and the epoch "
          "(docs/optimizers.md); `false`: data set order. Full batch: false (it does not apply).",
          aliases=("shuffled", "permute", "random_order")),
    Param("init", "choice", "normal",
          "Initial weights: `normal` (N(0, 1) x init_scale), `uniform` (U(-1, 1) x init_scale), `xavier` "
          "(Glorot uniform x init_scale), all with biases = bias_init; `numpy-legacy-normal` (notebooks 000/002: "
          "RandomState(seed).randn) and `numpy-legacy-uniform` (notebook 001: RandomState(seed).rand, biases drawn "
          "too). See kernels/init.py.",
          choices=INITS, aliases=("initialization", "initialisation", "init_scheme", "weight_init")),
    Param("init_scale", "float", 1.0,
          "Factor on the initial weights (not on constant biases). A seed's draw is the same at every scale, "
          "learning rate and loss: comparisons are paired.",
          lo=0, lo_open=True, aliases=("scale", "weight_scale", "init_std", "sigma", "std")),
    Param("bias_init", "bias_init", 0.0,
          "Every bias at the start: a constant (not scaled), or `\"draw\"`: drawn with the weights' scheme after W2 "
          "(b1, then b2) and multiplied by init_scale. numpy-legacy-uniform draws its biases either way (scaled "
          "only with `\"draw\"`). Rows hold null for drawn biases.",
          aliases=("b_init", "bias_value", "bias_start")),
    Param("seed", "int", 0, "Seed of the initial weights and, with `shuffle`, of the order of the samples (the only randomness "
          "in a run).", lo=0, hi=MAX_SEED,
          aliases=("seeds", "random_seed", "rng_seed", "random_state")),
    Param("dtype", "choice", "float64", "Working precision of the kernel.", choices=DTYPES,
          aliases=("precision", "float_type")),
    Param("criterion", "choice", "margin",
          "Convergence: `margin` (every output within `margin` of its target: |a - y| < margin) or `loss` "
          "(the run's loss <= `tol`).",
          choices=CRITERIA, aliases=("convergence", "stop_criterion", "converge")),
    Param("margin", "float", 0.4, "Tolerance of the `margin` criterion.", lo=0, hi=0.5, lo_open=True,
          aliases=("threshold",)),
    Param("tol", "float", 0.01, "Loss threshold of the `loss` criterion.", lo=0, lo_open=True,
          aliases=("tolerance", "loss_tol")),
    Param("early_stop", "bool", False, "Stop a run at the first epoch its criterion holds.",
          aliases=("early_stopping", "stop_early")),
    Param("checkpoints", "checkpoints", 32,
          "Epochs at which the loss is recorded: a count N of log-spaced epochs in [0, epochs] (0 and `epochs` "
          "included; fewer than N where small epochs round to the same one; 1 gives `epochs` alone) or an "
          "explicit list of epochs.",
          aliases=("checkpoint", "n_checkpoints", "log_every")),
    Param("save_weights", "bool", False, "Keep the initial and final weights of every run in the results.",
          aliases=("keep_weights", "store_weights", "save_weight")),
    Param("diagnostics", "bool", False,
          "Also record each run's curvature and dynamics: the sharpness (the Hessian's largest eigenvalue) of every "
          "state, steps above the edge of stability, the NTK's largest eigenvalue at the start, the loss peak "
          "(docs/curvature.md). Costs a Hessian eigenvalue per state: much slower; CPU backends only.",
          aliases=("diagnose", "curvature", "sharpness", "hessian")),
)
PARAM = {p.name: p for p in PARAMS}
# The model: one compiled kernel variant, the same for every lane of a kernel call (chunks are planned by it).
MODEL = ("activation", "output", "bias", "scaling", "reduction")
# The optimizer and the update scheme (sweep/grid/applies.py: those that apply to some runs only).
OPTIMIZATION = ("optimizer", "beta1", "beta2", "opt_eps", "weight_decay", "decay_biases", "batch_size", "shuffle")
# What every lane of one kernel call shares (chunks are planned by it): the model, the update scheme and
# whether the kernel computes the diagnostics.
CALL = MODEL + ("optimizer", "batch_size", "shuffle", "diagnostics")
# Parameters added after the first results were written: hashed into run_id only away from their defaults,
# so the runs from before keep their ids (sweep/grid/ids.py).
HASHED_OFF_DEFAULT = MODEL + OPTIMIZATION + ("diagnostics",)


def call_arguments(values):
    """Values of `CALL`'s parameters, in its order, as the kernels' keyword arguments in their types."""
    kinds = {"bias": bool, "shuffle": bool, "batch_size": int, "diagnostics": bool}
    return {name: kinds.get(name, str)(value) for name, value in zip(CALL, values)}
NAMES = tuple(PARAM)
DEFAULTS = {p.name: p.default for p in PARAMS}

# Top-level settings of a grid file that are not run parameters.
SETTINGS = (
    Param("name", "name", None,
          "Required. The sweep's name: results go to `results/NAME/`.", aliases=("title", "sweep", "sweep_name")),
    Param("description", "text", "", "Free text, kept in the results manifest.", aliases=("desc", "notes", "comment")),
    Param("max_runs", "int", 20_000_000, "Refuse grids that expand to more runs than this (a 4096 x 4096 map is "
          "16.8 million). Grids whose runs would not fit in this machine's memory are refused anyway.", lo=1,
          hi=1_000_000_000,
          aliases=("limit", "max_size", "run_limit")),
    Param("chunk_size", "int", None, "At most this many networks (lanes) per kernel call. Default: 2,048, more "
          "(up to 65,536) for runs so cheap that 2,048 would train in milliseconds (docs/design.md).", lo=1,
          hi=1_048_576, aliases=("chunk", "lanes", "networks_per_call")),
    Param("record", "columns", None,
          "The result columns to store, e.g. `[\"trainability\"]` for a map of a million runs: a list of the "
          "statistics of docs/results.md (run_id and the parameter columns are always stored). Default: all.",
          aliases=("columns", "store", "keep", "results")),
)
SETTING = {s.name: s for s in SETTINGS}

# Aliases for "did you mean", built from the tables above.
ALIASES = {alias: p.name for p in PARAMS + SETTINGS for alias in p.aliases}


def markdown_table(rows=PARAMS):
    """The parameter reference as a Markdown table (docs/parameters.md, via sweep.doctables)."""
    def default(p):
        if p.default is None:
            return {"float": "`lr`", "columns": "all", "int": "automatic"}.get(p.kind, "(required)")
        if isinstance(p.default, bool):
            return "`true`" if p.default else "`false`"
        if isinstance(p.default, str):
            return f'`"{p.default}"`' if p.default else '`""`'
        if isinstance(p.default, int) and p.default >= 10_000:
            return f"`{p.default:_}`"
        return f"`{p.default!r}`"

    lines = ["| name | default | allowed | meaning |", "|---|---|---|---|"]
    for p in rows:
        allowed = p.expected.replace("|", "\\|")
        lines.append(f"| `{p.name}` | {default(p)} | {allowed} | {p.doc} |")
    return "\n".join(lines) + "\n"

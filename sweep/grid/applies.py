"""Parameters that apply to some runs only, and the neutral value they hold in the others.

A run of `optimizer = "gd"` has no beta1: its row holds null there and its
run_id is that of the run without one, whatever the grid wrote for the runs
of other optimizers. So a grid may cross optimizers with the hyperparameters
of one of them, and equivalent runs keep one identity. A value that applies
to no run of the grid at all is an error (it was meant for something), and
runs that differ only in values that do not apply to them are duplicates
(the grid's duplicate error names the parameter).

`RULES` is the one table of these conditions; `neutralize` applies it to a
runs table kept as vocabulary and codes (`sweep.grid.runs`), `neutral_run`
to one run given as a dict (`sweep.grid.ids.run_id`).
"""
from dataclasses import dataclass

import numpy as np

from sweep.errors import GridError
from sweep.params import PARAM, describe


@dataclass(frozen=True)
class Rule:
    """`name` applies to a run where `holds(run)` (run: a dict of the `deciding` parameters); elsewhere
    it takes `neutral`. `where` says in words where it applies."""

    name: str
    neutral: object
    deciding: tuple
    holds: object
    where: str


RULES = (
    Rule("momentum", 0.0, ("optimizer",), lambda r: r["optimizer"] in ("gd", "nesterov"),
         'optimizer = "gd" or "nesterov"'),
    Rule("beta1", None, ("optimizer",), lambda r: r["optimizer"] in ("adam", "adamw"),
         'optimizer = "adam" or "adamw"'),
    Rule("beta2", None, ("optimizer",), lambda r: r["optimizer"] in ("adam", "adamw", "rmsprop"),
         'optimizer = "adam", "adamw" or "rmsprop"'),
    Rule("opt_eps", None, ("optimizer",), lambda r: r["optimizer"] in ("adam", "adamw", "rmsprop"),
         'optimizer = "adam", "adamw" or "rmsprop"'),
    Rule("decay_biases", False, ("weight_decay", "bias"), lambda r: r["weight_decay"] > 0 and r["bias"],
         "weight_decay > 0 and bias = true"),
    Rule("shuffle", False, ("batch_size",), lambda r: r["batch_size"] > 0, "batch_size >= 1"),
)
RULE = {r.name: r for r in RULES}


def neutral_run(params):
    """A run's canonical parameters (a dict of every parameter) with the neutral value wherever one does not
    apply; a null (None or NaN, as read back from a row) where the neutral value is null counts as it."""
    out = dict(params)
    for rule in RULES:
        if not rule.holds({name: out[name] for name in rule.deciding}):
            out[rule.name] = rule.neutral
    return out


def neutralize(values, codes):
    """Give every run the neutral value of each parameter that does not apply to it, in place: `values`
    (name -> list of distinct values) and `codes` (name -> int array per run) as `sweep.grid.runs` keeps
    them. Returns {name: the codes as they were} of the parameters it changed, for the duplicate error.

    GridError when a value other than the neutral one was given but applies to no run."""
    replaced = {}
    for rule in RULES:
        applies = _applies(rule, values, codes)
        neutral = _code_of(values[rule.name], rule.neutral)
        given = np.array([not _same(v, rule.neutral) and not _same(v, PARAM[rule.name].default)
                          for v in values[rule.name]], dtype=bool)
        if not applies.any() and given[codes[rule.name]].any():
            value = values[rule.name][int(np.flatnonzero(given)[0])]
            raise GridError(f"{rule.name} = {describe(value)} is set, but it applies only where {rule.where}, and no "
                            f"run of the grid has that; remove it (or add runs it applies to)")
        if applies.all():
            continue
        if neutral is None:
            values[rule.name].append(rule.neutral)
            neutral = len(values[rule.name]) - 1
        own = codes[rule.name]
        replaced[rule.name] = own
        if applies.strides == (0,):  # no run, here: applies is all False
            codes[rule.name] = np.broadcast_to(np.int64(neutral), own.shape)
        else:
            codes[rule.name] = np.where(applies, own, neutral)
    return replaced


def _applies(rule, values, codes):
    """Per run, whether the rule's parameter applies (a stride-0 array when the deciding values are fixed)."""
    deciding = [codes[name] for name in rule.deciding]
    n = deciding[0].shape[0]
    if all(c.strides == (0,) for c in deciding):
        run = {name: values[name][int(c[0])] for name, c in zip(rule.deciding, deciding)}
        return np.broadcast_to(np.bool_(rule.holds(run)), (n,))
    sizes = [len(values[name]) for name in rule.deciding]
    flat = np.ravel_multi_index([np.asarray(c) for c in deciding], sizes)
    table = np.zeros(int(np.prod(sizes)), dtype=bool)
    for key in np.unique(flat):
        index = np.unravel_index(int(key), sizes)
        table[key] = rule.holds({name: values[name][int(i)] for name, i in zip(rule.deciding, index)})
    return table[flat]


def _same(a, b):
    return type(a) is type(b) and a == b if a is not None and b is not None else a is b


def _code_of(vocabulary, value):
    for i, v in enumerate(vocabulary):
        if _same(v, value):
            return i
    return None

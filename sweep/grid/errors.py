"""Grid errors: where a mistake is (key path, file) and how values are shown in messages.

Every mistake is a `GridError`: one line naming the file, the key path and
what was expected, e.g. ``grid.toml: grid.lr[2]: expected a number > 0,
got -0.1``. A check deep down (one parameter value, one dataset table)
raises it knowing only its own part of the key path; each caller adds its
part with ``with under(path):``, and the loader adds the file with
``with in_file(file):``. The error is re-raised ``from None``, so that a
traceback shows it alone, not the exception it was handled from.

`under` and `in_file` are classes rather than `contextlib.contextmanager`
generators because `under` wraps the check of every value of an axis
(a million for a large one), and a class is the cheaper of the two.
"""
import json
import re

from sweep.errors import GridError
from sweep.params import describe


class _Locating:
    """A context manager that re-raises a GridError with more of its location filled in."""

    __slots__ = ("where",)

    def __init__(self, where):
        self.where = where

    def __enter__(self):
        return None

    def __exit__(self, kind, exc, traceback):
        if isinstance(exc, GridError):
            raise self._locate(exc) from None
        return False


class under(_Locating):
    """``with under("grid.lr"):`` prefixes "grid.lr" to the key path of a GridError (`GridError.under`)."""

    __slots__ = ()

    def _locate(self, exc):
        return exc.under(self.where)


class in_file(_Locating):
    """``with in_file("grid.toml"):`` names the file of a GridError that names none (`GridError.in_file`)."""

    __slots__ = ()

    def _locate(self, exc):
        return exc.in_file(self.where)


def describe_point(params):
    """Parameter values as in a message: 'lr=0.1, checkpoints=[0, 10]'."""
    return ", ".join(f"{n}={describe(v) if not isinstance(v, tuple) else list(v)}" for n, v in params.items())


def key_part(name):
    """A TOML key as written in a key path (quoted when it is not a bare key)."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)

"""`--where` filters: a small expression language over the result columns.

``sweep summary --where EXPR`` and ``sweep plot --where EXPR`` keep the runs
for which EXPR holds, e.g. ``"loss == 'bce' and 0.1 <= lr < 1"``. EXPR used
to go to `pandas.DataFrame.query`, which evaluates Python: its ``@name``
reaches module globals, so ``@pd.io.common.os.system('id') == 0`` ran a
command. Here EXPR is parsed with `ast` (mode="eval"), every node is checked
against the short list of constructs the language has (see `parse`), and
the tree is evaluated by this module with vectorised NumPy operations on the
columns (see `mask`): no `eval`, `exec`, `DataFrame.query`, `DataFrame.eval`
or numexpr is involved.
"""
import ast
import math
import operator
import re
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd

from sweep.errors import SweepError
from sweep.params import suggest

MAX_LENGTH = 2000   # characters in a filter
MAX_DEPTH = 40      # nesting of and / or / not / comparisons in a filter
ALLOWED = ("a filter uses column names, numbers, strings, true/false, == != < <= > >=, in [...], "
           "and, or, not, parentheses")

__all__ = ["parse", "mask", "Column", "Literal", "Compare", "IsIn", "And", "Or", "Not",
           "MAX_LENGTH", "MAX_DEPTH"]


# --------------------------------------------------------------------------- the tree

@dataclass(frozen=True)
class Column:
    """A column, by name. `src` is its text in the filter (for messages)."""
    name: str
    src: str


@dataclass(frozen=True)
class Literal:
    """A number (int or float), a string or a bool."""
    value: object
    src: str


@dataclass(frozen=True)
class Compare:
    """`left op right`; op is one of == != < <= > >=; at least one side is a Column."""
    op: str
    left: object
    right: object
    src: str


@dataclass(frozen=True)
class IsIn:
    """`column in [values]`, or `column not in [values]` when negated."""
    column: Column
    values: tuple
    negated: bool
    src: str


@dataclass(frozen=True)
class And:
    terms: tuple
    src: str


@dataclass(frozen=True)
class Or:
    terms: tuple
    src: str


@dataclass(frozen=True)
class Not:
    term: object
    src: str


_NODES = (Column, Literal, Compare, IsIn, And, Or, Not)


# --------------------------------------------------------------------------- messages

def _clip(text, limit=60):
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _prefix(text):
    """'--where "lr > 1"' (repr-quoted, so control characters cannot break the line)."""
    return f"--where {_clip(text, 80)!r}"


def _quote(part):
    return repr(_clip(" ".join(str(part).split())))


class _Rejected(Exception):
    """Raised while checking the tree; turned into a SweepError that names the filter."""


def _not_allowed(segment, what, hint=ALLOWED):
    raise _Rejected(f"{_quote(segment)} is not allowed ({what}); {hint}")


# --------------------------------------------------------------------------- parsing

_SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
           ast.Pow: "**", ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>", ast.BitAnd: "&",
           ast.BitOr: "|", ast.BitXor: "^"}
_COMPARE = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_MIRROR = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_KIND = {  # what a rejected node is, in words
    ast.Attribute: "attribute access", ast.Call: "a function call", ast.Subscript: "indexing",
    ast.Slice: "a slice", ast.Lambda: "a lambda", ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension", ast.DictComp: "a comprehension", ast.GeneratorExp: "a generator",
    ast.JoinedStr: "an f-string", ast.FormattedValue: "an f-string", ast.Starred: "unpacking",
    ast.NamedExpr: "assignment (:=)", ast.Dict: "a dict", ast.Set: "a set; use [...] after in",
    ast.IfExp: "an if-expression", ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield",
}
_PLACEHOLDER = {1: "_", 2: "\u00e9", 3: "\u30a2", 4: "\U00020000"}  # identifier chars of 1-4 UTF-8 bytes


def _prepare(text):
    """`text` ready for ast.parse: each `quoted name` becomes an identifier of the same length in
    characters and in UTF-8 bytes, so every ast position still points at the user's characters
    (`_Builder.segment` reads them there). Rejects '@' and unbalanced closing brackets."""
    out = []
    i, n, depth = 0, len(text), 0

    def position(k):
        line = text.count("\n", 0, k) + 1
        col = k - (text.rfind("\n", 0, k) + 1) + 1
        return f"column {col}" if line == 1 else f"line {line}, column {col}"

    while i < n:
        c = text[i]
        if c in "'\"":  # a string literal: copied as it is
            quote = text[i:i + 3] if text[i:i + 3] in ("'''", '"""') else c
            j = i + len(quote)
            while j < n and not text.startswith(quote, j) and (len(quote) == 3 or text[j] != "\n"):
                j += 2 if text[j] == "\\" else 1
            j = min(n, j + len(quote))
        elif c == "#":  # a comment: copied up to the end of its line
            j = text.find("\n", i)
            j = n if j < 0 else j
        elif c == "`":
            end = text.find("`", i + 1)
            line_end = min((k for k in (text.find("\n", i), text.find("\r", i)) if k >= 0), default=n)
            if end < 0 or end > line_end:
                raise _Rejected(f"the backtick at {position(i)} is not closed on its line; "
                                f"quote a column name as `name`")
            if end == i + 1:
                raise _Rejected(f"empty column name `` at {position(i)}")
            quoted = text[i:end + 1]
            out.append("Q" + "".join(_PLACEHOLDER[len(ch.encode("utf-8"))] for ch in quoted[1:]))
            i = end + 1
            continue
        elif c == "@":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] in "_."):
                j += 1
            raise _Rejected(f"{_quote(text[i:j])} is not allowed ('@name' is pandas' syntax for Python "
                            f"variables; a filter names only columns); {ALLOWED}")
        else:
            j = i + 1
            if c in "([{":
                depth += 1
            elif c in ")]}":
                depth -= 1
                if depth < 0:
                    raise _Rejected(f"unmatched {c!r} at {position(i)}")
        out.append(text[i:j])
        i = j
    return "".join(out)


def _syntax_message(exc, text):
    """One line for a SyntaxError in '(' + text + '\\n)'."""
    lines = re.split(r"\r\n|\r|\n", text)
    line, col = exc.lineno or 1, (exc.offset or 1) - (1 if (exc.lineno or 1) == 1 else 0)
    msg = (exc.msg or "invalid syntax").split("\n")[0]
    if "Maybe you meant '==' or ':='" in msg or msg.startswith("cannot assign"):
        lone = re.search(r"(?<![=<>!:])=(?!=)", text)
        if lone:
            line = text.count("\n", 0, lone.start()) + 1
            col = lone.start() - (text.rfind("\n", 0, lone.start()) + 1) + 1
        msg = "'=' does not compare (use '==')"
    elif msg.startswith("invalid syntax. "):
        msg = "invalid syntax"
    if line > len(lines) or (line == len(lines) and col > len(lines[-1])):
        return f"{msg} at the end of the filter (after {_quote(text.rstrip()[-20:])})"
    col = max(col, 1)
    rest = lines[line - 1][col - 1:]
    if re.match(r"=(?!=)", rest):
        msg = "'=' does not compare (use '==')"
    elif rest[:1] in ("&", "|"):
        msg = "invalid syntax (use and / or, not & && | ||)"
    at = f"column {col}" if len(lines) == 1 else f"line {line}, column {col}"
    return f"{msg} at {at} ({_quote(lines[line - 1][col - 1:col + 19] or ' ')})"


def parse(text):
    """The checked expression tree of a `--where` filter; `SweepError` for anything else.

    The tree is made of `Column`, `Literal`, `Compare`, `IsIn`, `And`, `Or`
    and `Not`; it does not depend on any DataFrame (`mask` checks the column
    names and kinds). The language, and nothing else::

        filter     := or
        or         := and ("or" and)*
        and        := not ("and" not)*
        not        := "not" not | comparison | "(" or ")" | column | true | false
        comparison := operand (op operand)+    # chained: a < b < c is a < b and b < c
                    | column ("in" | "not in") list
        op         := "==" | "!=" | "<" | "<=" | ">" | ">="
        operand    := column | number | string | true | false
        list       := "[" [literal ("," literal)* [","]] "]"  or the same in "(" ")"
        column     := identifier | `any text without a backtick`
        number     := int | float | "-" number  (1, 0.5, 1e-3, -2)
        string     := '...' | "..."
        true/false := true | false | True | False

    A comparison needs a column on at least one side, on either side
    (``1 < lr``); two columns may be compared (``final_loss < min_loss``).
    ``true``/``false``/``True``/``False`` are always literals: a column of
    that name, or one whose name is not an identifier, goes in backticks
    (```final loss` < 0.1``). Identifiers starting with ``__`` are refused.
    New lines and ``#`` comments are allowed. At most `MAX_LENGTH`
    characters and `MAX_DEPTH` levels of nesting.

    Every refusal is a one-line SweepError quoting the filter and its
    offending part: attribute access, calls, ``@name``, indexing, lambdas,
    comprehensions, f-strings, ``*``, ``:=``, arithmetic (except ``-`` before
    a number), ``is``, ``& | ~ ^`` (use and / or / not), dicts and sets,
    if-expressions, None, bytes, complex numbers.
    """
    if not isinstance(text, str):
        raise SweepError(f"--where expects text, got {type(text).__name__}")
    if not text.strip():
        raise SweepError(f"{_prefix(text)}: the filter is empty; {ALLOWED}, e.g. \"lr == 0.1 and loss == 'bce'\"")
    if len(text) > MAX_LENGTH:
        raise SweepError(f"--where {_quote(text)}: the filter is too long ({len(text)} characters; "
                         f"at most {MAX_LENGTH})")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise SweepError(f"{_prefix(text)}: the filter is not valid text (it holds undecodable bytes)") from None
    if "\x00" in text:
        raise SweepError(f"{_prefix(text)}: the filter holds a NUL character")
    try:
        source = "(" + _prepare(text) + "\n)"
        try:
            tree = ast.parse(source, mode="eval")
        except SyntaxError as exc:
            raise _Rejected(_syntax_message(exc, text)) from None
        except (RecursionError, MemoryError, ValueError):
            raise _Rejected(f"the filter is nested too deeply (at most {MAX_DEPTH} levels)") from None
        body = tree.body
        if isinstance(body, ast.Tuple) and not body.elts and (body.lineno, body.col_offset) == (1, 0):
            raise _Rejected(f"the filter is empty (only a comment); {ALLOWED}")
        return _Builder(text).condition(body, 0)
    except _Rejected as exc:
        raise SweepError(f"{_prefix(text)}: {exc}") from None


class _Builder:
    """Turns a Python ast into the filter tree, rejecting every node outside the language."""

    def __init__(self, text):
        self.text = text
        # the user's text, at the same positions, as ast counts them: lines of UTF-8 bytes
        parts = re.split(r"(\r\n|\r|\n)", "(" + text + "\n)")
        self.lines = [(parts[i] + (parts[i + 1] if i + 1 < len(parts) else "")).encode("utf-8")
                      for i in range(0, len(parts), 2)]

    def segment(self, node):
        """The user's text of `node` (backtick names included)."""
        if (node.lineno, node.col_offset) == (1, 0):  # the '(' ... '\n)' around the filter
            return self.text
        first, last = node.lineno - 1, node.end_lineno - 1   # ast.get_source_segment, without its
        if first == last:                                    # slow line splitting on every call
            return self.lines[first][node.col_offset:node.end_col_offset].decode("utf-8")
        middle = b"".join(self.lines[first + 1:last])
        return (self.lines[first][node.col_offset:] + middle
                + self.lines[last][:node.end_col_offset]).decode("utf-8")

    @staticmethod
    def check_depth(depth):
        if depth > MAX_DEPTH:
            raise _Rejected(f"the filter is nested too deeply (at most {MAX_DEPTH} levels)")

    def reject(self, node):
        """Raise _Rejected for any node outside the language."""
        seg = self.segment(node)
        if isinstance(node, ast.BinOp):
            sym = _SYMBOL.get(type(node.op), "?")
            if sym in ("&", "|"):
                _not_allowed(seg, f"'{sym}' is bitwise", f"use {'and' if sym == '&' else 'or'} / not; {ALLOWED}")
            if sym == "^":
                _not_allowed(seg, "'^' is bitwise")
            _not_allowed(seg, f"arithmetic '{sym}'")
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Invert):
                _not_allowed(seg, "'~' is bitwise", f"use not; {ALLOWED}")
            if isinstance(node.op, ast.Not):
                _not_allowed(seg, "not applies to a condition, not to a value")
            if isinstance(node.op, ast.UAdd):
                _not_allowed(seg, "unary '+'")
            _not_allowed(seg, "unary '-' applies only to a number")
        if isinstance(node, ast.Compare):
            for op in node.ops:
                if isinstance(op, (ast.Is, ast.IsNot)):
                    _not_allowed(seg, "'is' compares identity", f"use == or !=; {ALLOWED}")
        if isinstance(node, ast.Constant):
            v = node.value
            what = ("None: a comparison with a missing value is always false" if v is None
                    else "a complex number" if isinstance(v, complex)
                    else "bytes" if isinstance(v, bytes)
                    else "an ellipsis" if v is Ellipsis else f"a {type(v).__name__} constant")
            _not_allowed(seg, what)
        if isinstance(node, (ast.List, ast.Tuple)):
            _not_allowed(seg, "a list is allowed only after in / not in")
        if isinstance(node, (ast.BoolOp, ast.Compare)):
            _not_allowed(seg, "a condition where a value is expected")
        _not_allowed(seg, _KIND.get(type(node), type(node).__name__))

    # -- conditions: what and / or / not combine

    def condition(self, node, depth):
        self.check_depth(depth)
        seg = self.segment(node)
        if isinstance(node, ast.BoolOp):
            terms = tuple(self.condition(v, depth + 1) for v in node.values)
            return (And if isinstance(node.op, ast.And) else Or)(terms, seg)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return Not(self.condition(node.operand, depth + 1), seg)
        if isinstance(node, ast.Compare):
            return self.compare(node, depth)
        if isinstance(node, (ast.Name, ast.Constant, ast.UnaryOp)):
            value = self.operand(node, depth)
            if isinstance(value, Column) or isinstance(value.value, bool):
                return value
            kind = "a string" if isinstance(value.value, str) else "a number"
            raise _Rejected(f"{_quote(seg)} is {kind}, not a condition; compare it with a column, "
                            f"e.g. \"lr > 0.1\"")
        self.reject(node)

    def compare(self, node, depth):
        operands = [node.left, *node.comparators]
        terms = []
        for i, op in enumerate(node.ops):
            left, right = operands[i], operands[i + 1]
            span = SimpleNamespace(lineno=left.lineno, col_offset=left.col_offset,
                                   end_lineno=right.end_lineno, end_col_offset=right.end_col_offset)
            seg = self.segment(span)
            if isinstance(op, (ast.In, ast.NotIn)):
                terms.append(self.is_in(left, right, isinstance(op, ast.NotIn), seg, depth))
                continue
            if isinstance(op, (ast.Is, ast.IsNot)):
                _not_allowed(seg, "'is' compares identity", f"use == or !=; {ALLOWED}")
            a, b = self.operand(left, depth + 1), self.operand(right, depth + 1)
            symbol = _COMPARE[type(op)]
            if isinstance(a, Literal) and isinstance(b, Literal):
                raise _Rejected(f"{_quote(seg)} compares two literals; one side must be a column")
            if isinstance(a, Literal):  # the column first: 1 < lr is lr > 1
                a, b, symbol = b, a, _MIRROR[symbol]
            terms.append(Compare(symbol, a, b, seg))
        seg = self.segment(node)
        return terms[0] if len(terms) == 1 else And(tuple(terms), seg)

    def is_in(self, left, right, negated, seg, depth):
        column = self.operand(left, depth + 1)
        word = "not in" if negated else "in"
        if not isinstance(column, Column):
            raise _Rejected(f"{_quote(seg)}: the left side of {word} must be a column")
        if not isinstance(right, (ast.List, ast.Tuple)):
            if isinstance(right, (ast.Set, ast.Dict, ast.Call, ast.Attribute, ast.Subscript, ast.ListComp,
                                  ast.GeneratorExp, ast.SetComp, ast.DictComp, ast.Lambda, ast.BinOp,
                                  ast.JoinedStr, ast.NamedExpr, ast.Starred, ast.IfExp)):
                self.reject(right)
            raise _Rejected(f"{_quote(seg)}: {word} needs a list of numbers, strings or true/false on its "
                            f"right, e.g. loss in ['mse', 'bce']")
        values = []
        for item in right.elts:
            value = self.operand(item, depth + 1)
            if isinstance(value, Column):
                raise _Rejected(f"{_quote(self.segment(item))} in {_quote(seg)}: a list after {word} holds "
                                f"only numbers, strings and true/false, not columns")
            values.append(value)
        return IsIn(column, tuple(values), negated, seg)

    # -- operands: what comparisons compare

    def operand(self, node, depth):
        self.check_depth(depth)
        seg = self.segment(node)
        if isinstance(node, ast.Name):
            if seg.startswith("`"):
                return Column(seg[1:-1], seg)
            if seg in ("true", "false", "True", "False"):
                return Literal(seg in ("true", "True"), seg)
            if seg.startswith("__"):
                _not_allowed(seg, "a dunder name")
            return Column(seg, seg)
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, (bool, str)) or (isinstance(v, (int, float)) and not isinstance(v, bool)):
                return Literal(v, seg)
            self.reject(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = node.operand
            if (isinstance(inner, ast.Constant) and isinstance(inner.value, (int, float))
                    and not isinstance(inner.value, bool)):
                return Literal(-inner.value, seg)
        self.reject(node)


# --------------------------------------------------------------------------- evaluation

_OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
        ">": operator.gt, ">=": operator.ge}
_WORDS = {"number": "numbers", "text": "text", "bool": "true/false", "empty": "only missing values"}


@dataclass
class _View:
    """A column as NumPy: values (missing ones filled with a harmless value of the kind), the
    missing mask, its kind ('number', 'text', 'bool', 'empty' or 'other') and dtype in words."""
    values: np.ndarray
    missing: np.ndarray
    kind: str
    dtype: str


def _view(series):
    dtype = series.dtype
    n = len(series)
    if isinstance(dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy()
        missing = codes < 0
        cats = _view(pd.Series(series.cat.categories))
        if len(cats.values) == 0:
            return _View(np.zeros(n, dtype=object), np.ones(n, dtype=bool), "empty", "category")
        return _View(cats.values[np.where(missing, 0, codes)], missing, cats.kind, "category")
    missing = np.asarray(series.isna().to_numpy(), dtype=bool)
    name = str(dtype)
    if pd.api.types.is_bool_dtype(dtype):
        kind, fill = "bool", False
    elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        kind, fill = "number", 0
    elif dtype == object or pd.api.types.is_string_dtype(dtype):
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        kind, fill = {"string": ("text", ""), "boolean": ("bool", False), "integer": ("number", 0),
                      "floating": ("number", 0.0), "mixed-integer-float": ("number", 0.0),
                      "empty": ("empty", None)}.get(inferred, ("other", None))
        values = series.to_numpy(dtype=object, na_value=None).copy()
        values[missing] = fill
        return _View(values, missing, kind, name)
    else:
        return _View(series.to_numpy(), missing, "other", name)
    if isinstance(dtype, pd.api.extensions.ExtensionDtype):
        values = series.to_numpy(dtype=dtype.numpy_dtype, na_value=fill)
    else:
        values = series.to_numpy()
    return _View(values, missing, kind, name)


def _literal_kind(value):
    if isinstance(value, bool):
        return "bool"
    return "text" if isinstance(value, str) else "number"


def _describe_literal(lit):
    kind = _literal_kind(lit.value)
    what = {"bool": "true/false", "text": "the string", "number": "the number"}[kind]
    return f"{what} {lit.src}" if kind != "bool" else f"{lit.src} (true/false)"


class _Evaluator:
    def __init__(self, df):
        self.df = df
        self.n = len(df)
        self.views = {}

    def column(self, col):
        if col.name not in self.views:
            names = [c for c in self.df.columns if isinstance(c, str)]
            if col.name not in names:
                shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
                raise _Rejected(f"unknown column {col.name!r}{suggest(col.name, names)}; "
                                f"the columns are {shown or 'none'}")
            series = self.df[col.name]
            if isinstance(series, pd.DataFrame):
                raise _Rejected(f"column {col.name!r} appears more than once in the results")
            self.views[col.name] = _view(series)
        return self.views[col.name]

    def describe(self, col, view):
        return f"column {col.name!r} ({_WORDS.get(view.kind, 'values')}, {view.dtype})"

    def run(self, node):
        if isinstance(node, Literal):
            return np.full(self.n, bool(node.value))
        if isinstance(node, Column):
            view = self.column(node)
            if view.kind not in ("bool", "empty"):
                raise _Rejected(f"{self.describe(node, view)} is not a true/false column; compare it, "
                                f"e.g. \"{node.src} == ...\"")
            return np.asarray(view.values, dtype=bool) & ~view.missing if view.kind == "bool" \
                else np.zeros(self.n, dtype=bool)
        if isinstance(node, Not):
            return ~self.run(node.term)
        if isinstance(node, (And, Or)):
            out = self.run(node.terms[0])
            for term in node.terms[1:]:
                out = (out & self.run(term)) if isinstance(node, And) else (out | self.run(term))
            return out
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, IsIn):
            return self.is_in(node)
        raise TypeError(f"not a filter node: {node!r}")

    def check(self, node, col, view, other_kind, other_text, op):
        """Reject comparing `col` with a value of another kind, or ordering a non-number."""
        if view.kind == "other":
            raise _Rejected(f"{_quote(node.src)}: {self.describe(col, view)} cannot be filtered on")
        if view.kind != "empty" and other_kind not in (view.kind, "empty"):
            raise _Rejected(f"{_quote(node.src)} compares {self.describe(col, view)} with {other_text}")
        if op in ("<", "<=", ">", ">=") and "number" not in (view.kind, other_kind) \
                and {view.kind, other_kind} != {"empty"}:
            raise _Rejected(f"{_quote(node.src)}: '{op}' needs numbers but {self.describe(col, view)} "
                            f"has no order; use == != in [...]")

    def compare(self, node):
        left = self.column(node.left)
        if isinstance(node.right, Column):
            right = self.column(node.right)
            if right.kind == "other":
                raise _Rejected(f"{_quote(node.src)}: {self.describe(node.right, right)} cannot be filtered on")
            self.check(node, node.left, left, right.kind, self.describe(node.right, right), node.op)
            other, other_missing = right.values, right.missing
        else:
            kind = _literal_kind(node.right.value)
            self.check(node, node.left, left, kind, _describe_literal(node.right), node.op)
            other, other_missing = _number(node.right.value), None
        if left.kind == "empty" or (isinstance(node.right, Column) and right.kind == "empty"):
            return np.zeros(self.n, dtype=bool)
        out = self.apply(node, _OPS[node.op], left.values, other) & ~left.missing
        return out if other_missing is None else out & ~other_missing

    def is_in(self, node):
        view = self.column(node.column)
        if view.kind == "other":
            raise _Rejected(f"{_quote(node.src)}: {self.describe(node.column, view)} cannot be filtered on")
        for lit in node.values:
            self.check(node, node.column, view, _literal_kind(lit.value), _describe_literal(lit), "==")
        out = np.zeros(self.n, dtype=bool)
        if view.kind != "empty":
            for lit in node.values:
                out |= self.apply(node, operator.eq, view.values, _number(lit.value))
        return (~out if node.negated else out) & ~view.missing

    def apply(self, node, op, values, other):
        try:
            with np.errstate(all="ignore"):
                out = op(values, other)
        except (TypeError, ValueError, OverflowError) as exc:  # e.g. an object column of odd values
            raise _Rejected(f"{_quote(node.src)} cannot be computed ({exc})") from None
        out = np.asarray(out, dtype=bool)
        return out if out.shape == (self.n,) else np.broadcast_to(out, (self.n,)).copy()


def _number(value):
    """A literal as NumPy compares it. NumPy compares Python ints of any size exactly with integer
    arrays, but cannot turn one beyond the float range into a float: that is +-inf here."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2 ** 1000:
        return math.inf if value > 0 else -math.inf  # beyond any int64, and near the float limit (no float())
    return value


def mask(df, text):
    """A boolean NumPy array, one entry per row of `df`: where the filter `text` holds.

    `text` is a `--where` filter (see `parse`), or a tree `parse` returned.

    * Kinds: numbers compare with numbers, text with text, true/false with
      true/false. Anything else (``lr == 'bce'``, ``loss == 1``,
      ``converged == 1``) is a SweepError naming the column and the literal,
      never a silent "no rows"; so is an unknown column (with a did-you-mean
      and some of the columns) and a column of other values (datetimes,
      lists, mixed objects).
    * Order: only numbers have one. ``< <= > >=`` on a text (string or
      Categorical) or true/false column is an error: those take
      ``== != in not in``.
    * Categoricals compare by their values (``loss == 'bce'``); a
      Categorical of numbers is a number column.
    * Floats compare exactly: ``lr == 0.1`` matches a stored 0.1. A float32
      column compares with the literal rounded to float32 (NumPy's rule for
      Python scalars), so a stored float32 0.1 matches ``lr == 0.1`` too.
      Ints compare exactly with int columns, whatever their size.
    * Missing values (NaN, ``pd.NA``, None) satisfy no comparison: ``==``,
      ``!=``, ``<``..., ``in`` and ``not in`` are all False for a row whose
      operand (either one, for two columns) is missing, and a bare
      true/false column is False where it is missing. ``not`` is the plain
      complement of its operand, so ``epoch_converged > 100`` leaves out the
      runs that never converged, ``not (epoch_converged > 100)`` keeps them,
      and ``epoch_converged <= 100`` leaves them out again; likewise
      ``x not in [1]`` leaves out a missing x and ``not (x in [1])`` keeps it.
    """
    if isinstance(text, str):
        tree, shown = parse(text), text
    elif isinstance(text, _NODES):
        tree, shown = text, text.src
    else:
        raise SweepError(f"--where expects text, got {type(text).__name__}")
    if isinstance(tree, Literal) and not isinstance(tree.value, bool):
        raise SweepError(f"{_prefix(shown)}: {_quote(tree.src)} is not a condition")
    try:
        out = _Evaluator(df).run(tree)
    except _Rejected as exc:
        raise SweepError(f"{_prefix(shown)}: {exc}") from None
    return np.asarray(out, dtype=bool)

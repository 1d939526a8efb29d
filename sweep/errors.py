"""The errors `sweep` reports to its users.

Every mistake a user can make is raised as a `SweepError` whose message is
one line; the CLI prints it as ``sweep: error: <message>`` and exits with
status 2. Nothing else (no traceback) reaches the user for such errors.

`GridError` is a mistake in a grid file. It carries where the mistake is
(file, key path such as ``grid.lr[2]``, or line and column for TOML syntax)
and renders as::

    grid.toml: grid.lr[2]: expected a number > 0, got -0.1
    grid.toml:3:7: invalid TOML: Invalid value
"""


def _one_line(message):
    """The message on one line, whatever line breaks (\\n, \\r, U+2028...) it holds."""
    return " ".join(str(message).splitlines()) if message else ""


class SweepError(Exception):
    """A user-facing error: its message is one line, printed without a traceback."""

    def __init__(self, message):
        super().__init__(_one_line(message))

    @property
    def message(self):
        return self.args[0]


class SweepWarning(UserWarning):
    """Something a user should know about results that were still read (e.g. parts left out)."""


class GridError(SweepError):
    """A mistake in a grid file.

    message: what was expected (and what was found), e.g.
        ``expected a number > 0, got -0.1``.
    file: the grid file as the user named it; filled in by the loader when
        the error is raised before the file name is known.
    key: the key path, e.g. ``grid.lr[2]``, ``datasets.mine.inputs[1]``;
        None when the message itself names the key.
    line, col: 1-based position, for TOML syntax errors.
    """

    def __init__(self, message, *, file=None, key=None, line=None, col=None):
        self.detail = _one_line(message)
        self.file = None if file is None else str(file)
        self.key = key
        self.line = line
        self.col = col
        super().__init__(self.detail)

    def __str__(self):
        where = _one_line(self.file or "<grid>")
        if self.line is not None:
            where += f":{self.line}" + (f":{self.col}" if self.col is not None else "")
        parts = [where]
        if self.key:
            parts.append(_one_line(self.key))
        parts.append(self.detail)
        return ": ".join(parts)

    @property
    def message(self):
        return str(self)

    def in_file(self, file):
        """Set the file name if it is not set yet; return self (for `raise err.in_file(path)`)."""
        if self.file is None:
            self.file = str(file)
        return self

    def under(self, prefix):
        """Prefix the key path (e.g. 'grid' + 'lr[2]' -> 'grid.lr[2]'); return self."""
        if prefix:
            if not self.key:
                self.key = prefix
            elif self.key.startswith("["):
                self.key = prefix + self.key
            else:
                self.key = f"{prefix}.{self.key}"
        return self

"""The grid file: parse, validate, expand into the runs table.

One module per concern:

* `sweep.grid.parse`: the grid file format (documented there); reading the
  file and its TOML, checking its keys and tables: `load_grid`,
  `loads_grid`, `parse_grid`;
* `sweep.grid.overrides`: `--set KEY=VALUE` and `sweep.run(**overrides)`
  applied to a parsed grid document;
* `sweep.grid.values`: checking one parameter's values (fixed, listed or
  generated) against the parameter table and the known datasets;
* `sweep.grid.model`: the validated grid: `Grid`, `Block`, `Axis`, `Exclude`;
* `sweep.grid.ids`: run identity: `run_id`, the hash of a run's canonical
  parameters, and `run_ids` for a whole table;
* `sweep.grid.runs`: `expand`, the runs table of a grid;
* `sweep.grid.errors`: ``with under(path)`` and ``with in_file(file)``,
  which say where a `GridError` is, and how values are shown in messages.
"""
from sweep.grid.ids import run_id
from sweep.grid.model import Axis, Block, Exclude, Grid
from sweep.grid.parse import load_grid, loads_grid, parse_grid
from sweep.grid.runs import expand

__all__ = ["Axis", "Block", "Exclude", "Grid", "expand", "load_grid", "loads_grid", "parse_grid", "run_id"]

"""`sweep map` end to end: a real 64 x 64 sweep of lr_hidden x lr_output, mapped from the command line."""
import re
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

import sweep
from sweep import maps
from sweep.cli import build_parser, main

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"
SIDE = 64  # the smallest grid whose boundary has a box-counting dimension (3 box sizes, 8 boxes across)
GRID = {"name": "lrmap", "epochs": 30,
        "grid": {"lr_hidden": {"logspace": [-1, 2, SIDE]}, "lr_output": {"logspace": [-1, 2, SIDE]}}}
AXES = ["--x", "lr_hidden", "--y", "lr_output"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """64 x 64 networks, one per (lr_hidden, lr_output), 30 epochs: a few seconds."""
    df = sweep.run(GRID, out=tmp_path_factory.mktemp("map") / "res", progress=False)
    assert len(df) == SIDE * SIDE
    return Path(df.attrs["path"])


def png_header(path):
    """(width, height, colour type) from a PNG's IHDR chunk, after checking the signature."""
    data = Path(path).read_bytes()
    assert data[:8] == PNG and data[12:16] == b"IHDR"
    width, height, _, colour = struct.unpack(">IIBB", data[16:26])
    return width, height, colour


def files_under(path):
    return sorted(p for p in Path(path).rglob("*") if p.is_file())


def test_the_default_map_is_a_png_beside_the_results(results, capsys):
    out = results.parent / f"_{results.name}" / "map-final_loss.png"
    assert main(["map", str(results), *AXES, "--color", "final_loss"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == f"sweep: map of lrmap in {out}\n"
    width, height, colour = png_header(out)
    assert colour == 6  # RGBA, as Agg writes
    # 1 + 6 + 2.25 inches wide (margin, axes, colour bar), 0.8 + 6 + 0.85 high, at 150 dpi: the axes are 900
    # pixels a side for 64 points
    assert (width, height) == (int(9.25 * 150), int(7.65 * 150))
    assert not list(results.glob("*.png"))  # the results directory holds Parquet files only


def test_output_format_and_resolution_follow_the_options(results, tmp_path):
    assert main(["map", str(results), *AXES, "--color", "converged", "-o", str(tmp_path / "c.png"),
                 "--dpi", "80"]) == 0
    assert png_header(tmp_path / "c.png") == (int(9.25 * 80), int(7.65 * 80), 6)
    assert main(["map", str(results), *AXES, "--color", "converged", "-o", str(tmp_path / "c.pdf")]) == 0
    assert (tmp_path / "c.pdf").read_bytes()[:5] == b"%PDF-"
    assert main(["map", str(results), *AXES, "--color", "final_loss", "-o", str(tmp_path / "c.svg")]) == 0
    assert b"<svg" in (tmp_path / "c.svg").read_bytes()[:2000]
    assert main(["map", str(results), *AXES, "--color", "final_loss", "-o", str(tmp_path / "noext")]) == 0
    assert png_header(tmp_path / "noext.png")[2] == 6


def test_each_run_is_the_pixel_of_its_learning_rates(results):
    df = sweep.load(results)
    fig = sweep.map(results, x="lr_hidden", y="lr_output", color="final_loss")
    img = fig.map_image
    assert img.shape == (SIDE, SIDE) and img.no_run == 0 and "lrmap" in fig._suptitle.get_text()
    i = np.searchsorted(img.ys, df["lr_output"])
    j = np.searchsorted(img.xs, df["lr_hidden"])
    np.testing.assert_array_equal(img.values[i, j], df["final_loss"].to_numpy())
    np.testing.assert_allclose(img.xs, np.logspace(-1, 2, SIDE), rtol=1e-12)
    assert fig.axes[0].get_xlabel() == "lr_hidden (log scale)"


def test_only_the_columns_the_map_needs_are_read(results):
    df = maps.map_frame(results, "lr_hidden", "lr_output", "final_loss", "seed == 0 and not diverged")
    assert list(df.columns) == ["lr_hidden", "lr_output", "final_loss", "seed", "diverged"]
    assert len(df) == int((~sweep.load(results)["diverged"]).sum())


def test_trainability_maps_and_measures_its_boundary(results, tmp_path, capsys):
    """The default colour. Written by the kernels since they record it; before that, a one-line error."""
    out = tmp_path / "t.png"
    rc = main(["map", str(results), *AXES, "--dimension", "-o", str(out)])
    captured = capsys.readouterr()
    if "trainability" not in sweep.load(results, columns=None).columns:
        assert rc == 2 and captured.err.startswith("sweep: error: --color trainability: no such column (results "
                                                   "written before sweep recorded trainability lack it")
        assert captured.err.count("\n") == 1 and not out.exists()
        return
    assert rc == 0
    first, second = captured.out.splitlines()
    assert re.fullmatch(r"box-counting dimension of the trained/not-trained boundary: \d\.\d\d \(fit over box "
                        r"sizes 2-\d+ pixels, \d sizes, R\^2 \d\.\d{3}\)", first), first
    assert second.startswith("boundary boxes by box size (pixels; * fitted): 2: ")
    fit_plot = tmp_path / "t-dimension.png"
    assert png_header(out)[2] == 6 and png_header(fit_plot)[2] == 6
    assert captured.err == f"sweep: map of lrmap in {out}, its box-counting fit in {fit_plot}\n"
    fig = sweep.map(results, x="lr_hidden", y="lr_output", dimension=True)
    assert first == fig.dimension.text()
    df = sweep.load(results, columns=["lr_hidden", "lr_output", "trainability"])
    img = fig.map_image
    signs = maps.sign_image(img)[np.searchsorted(img.ys, df["lr_output"]), np.searchsorted(img.xs, df["lr_hidden"])]
    np.testing.assert_array_equal(signs, (df["trainability"] < 0).astype(float))


@pytest.mark.parametrize("args, message", [
    (["--x", "lr_hiden", "--y", "lr_output"], "--x lr_hiden: no such column (did you mean 'lr_hidden'?); the numeric "
                                               "columns are hidden, epochs, lr, lr_hidden, lr_output,"),
    ([*AXES, "--color", "outcome"], "--color outcome: not a numeric or true/false column"),
    ([*AXES, "--color", "trainabilty"], "--color trainabilty: no such column"),
    (["--x", "lr_hidden", "--y", "seed"], "64 rows share lr_hidden=0.1, seed=0 (and 63 other grid points have "
                                          "several); a map draws one run per point: the grid's other axes "
                                          "(lr_output) vary there"),
    ([*AXES, "--where", "lr_hidden > 1000"], "--where 'lr_hidden > 1000' selects none of the 4096 runs"),
    ([*AXES, "--where", "lr_hiden > 1"], "--where 'lr_hiden > 1': unknown column 'lr_hiden' (did you mean "
                                         "'lr_hidden'?)"),
    ([*AXES, "--color", "converged", "--dimension", "--where", "lr_hidden < 0.2"],
     "a box-counting dimension needs at least 3 box sizes"),
    ([*AXES, "--color", "final_loss", "--dimension"], "--dimension measures the boundary between trained and not "
                                                      "trained"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(results, tmp_path, capsys, args, message):
    before = files_under(results.parent)
    out = tmp_path / "bad.png"
    assert main(["map", str(results), *args, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sweep: error: " + message) and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert not out.exists() and not (tmp_path / "bad-dimension.png").exists()
    assert files_under(results.parent) == before


def test_bad_outputs_are_refused_before_anything_is_read(results, tmp_path, capsys):
    for output, message in ((results / "map.png", "will not write"),
                            (tmp_path / "map.xyz", "matplotlib cannot write .xyz files"),
                            (tmp_path / "no" / "map.png", "the directory")):
        assert main(["map", str(results), *AXES, "-o", str(output)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and not output.exists()
    assert main(["map", str(tmp_path / "nowhere"), *AXES]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert main(["map", str(results), "--x", "lr_hidden"]) == 2  # --y is required
    assert "the following arguments are required: --y" in capsys.readouterr().err


def test_missing_matplotlib_is_one_line_exit_2(results, tmp_path, monkeypatch, capsys):
    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, mod, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["map", str(results), *AXES, "-o", str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err == "sweep: error: " + maps.MISSING_MPL + "\n"
    assert not (tmp_path / "x.png").exists()


def test_docs_cli_md_documents_every_option_of_sweep_map():
    text = (ROOT / "docs" / "cli.md").read_text()
    section = re.search(r"^## `sweep map`\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, "docs/cli.md has no '## `sweep map`' section"
    parser = build_parser()
    sub = next(a for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict))
    options = [s for action in sub.choices["map"]._actions for s in action.option_strings if s not in ("-h", "--help")]
    assert set(options) >= {"--x", "--y", "--color", "--where", "-o", "--output", "--dimension", "--dpi"}
    for option in options:
        assert f"`{option}" in section.group(1), f"docs/cli.md's sweep map section does not mention {option}"

"""``lossbench run --data-root`` points images: URIs at the official files."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.image.test_readers import make_mnist


def test_data_root_option_reaches_the_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lossbench.cli.app import app

    # set through monkeypatch so the value the command writes is undone after the test
    monkeypatch.setenv("LOSSBENCH_DATA_ROOT", str(tmp_path / "elsewhere"))
    root = tmp_path / "data"
    root.mkdir()
    make_mnist(root, n_train=30, n_test=10)
    result = CliRunner().invoke(app, ["run", "--suite", "image", "--dataset", "images:mnist", "--loss", "ce",
                                      "--seeds", "1", "--dry-run", "--data-root", str(root),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "images:mnist" in result.output

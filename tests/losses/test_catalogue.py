"""The Markdown catalogue lists every registered loss with its metadata."""

from __future__ import annotations

from pathlib import Path

from lossbench.losses import LOSSES
from lossbench.losses.catalogue import losses_markdown


def test_every_loss_and_parameter_is_rendered() -> None:
    text = losses_markdown()
    for entry in LOSSES:
        info = entry.obj.info
        assert f"### `{info.name}`" in text
        assert info.citation in text
        for pname in info.params:
            assert f"| `{pname}` |" in text


def test_docs_file_is_up_to_date() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "losses.md"
    assert docs.read_text() == losses_markdown(), "regenerate docs/losses.md from losses_markdown()"

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lossbench.errors import SuiteError
from lossbench.suite import load_suite, packaged_suites, parse_suite
from tests.conftest import TINY


def test_packaged_quickstart_loads_offline() -> None:
    suite = load_suite("quickstart")
    assert suite.task == "classification"
    assert set(suite.losses) >= {"ce", "weighted-ce", "focal", "anyloss-f1"}
    assert len(suite.seeds) == 3
    assert all(uri.startswith("sklearn:") for uri in suite.datasets)


def test_every_packaged_suite_is_valid() -> None:
    assert "quickstart" in packaged_suites()
    for name in packaged_suites():
        assert load_suite(name).name == name


def test_suite_file_by_path(tiny_suite_file: Path) -> None:
    suite = load_suite(str(tiny_suite_file))
    assert suite.name == "tiny" and suite.seeds == (0, 1)
    assert suite.primary_metric == suite.metrics[0]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"lossess": ["ce"]}, "lossess: unknown key. Did you mean 'losses'?"),
        ({"losses": []}, "losses: is empty"),
        ({"losses": ["ce", "ce"]}, "'ce' is listed twice"),
        ({"losses": ["ce", "focal:gamma=2"], "datasets": ["sklearn:wine"]}, None),
        ({"losses": ["cee"]}, "Unknown loss or method 'cee'"),
        ({"seeds": 0}, "seeds: must be at least 1"),
        ({"seeds": [1, 1]}, "lists a seed twice"),
        ({"training": {"epochs": "ten"}}, "training.epochs: must be a int"),
        ({"training": {"lr": -1.0}}, "training.lr: must be positive"),
        ({"training": {"optimiser": "sgd"}}, "training.optimiser: unknown key"),
        ({"training": {"optimizer": "lbfgs"}}, "unknown optimizer 'lbfgs'"),
        ({"split": {"test": 0.7, "val": 0.5}}, "split: test and val are fractions"),
        ({"task": "clasification"}, "unknown task type"),
        ({"primary_metric": "f2"}, "unknown metric 'f2'"),
        ({"model": {"family": "mlp", "width": 3}}, "model.width: unknown option"),
        ({"datasets": ["breast_cancer"]}, "Cannot read dataset URI"),
        ({"version": True}, "version: must be a str or int"),
    ],
)
def test_malformed_suites_name_file_key_and_fix(change: dict, fragment: str | None) -> None:
    data = {**TINY, **change}
    data = {k: v for k, v in data.items() if k != "losses" or "lossess" not in change}
    if fragment is None:
        assert parse_suite(data, "s.toml").losses == ("ce", "focal")
        return
    with pytest.raises(SuiteError) as err:
        parse_suite(data, "s.toml")
    assert str(err.value).startswith("s.toml: ")
    assert fragment in str(err.value)


def test_missing_required_key() -> None:
    data = {k: v for k, v in TINY.items() if k != "primary_metric"}
    with pytest.raises(SuiteError, match="primary_metric: missing"):
        parse_suite(data, "s.toml")


@pytest.mark.parametrize("text", ["", "name = ", "[[[", "\x00"])
def test_not_toml(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SuiteError, match=r"bad\.toml"):
        load_suite(str(path))


def test_unknown_suite_name() -> None:
    with pytest.raises(SuiteError, match="Did you mean 'quickstart'"):
        load_suite("quickstar")


@pytest.mark.parametrize(("task", "family", "dataset", "options"), [
    ("classification", "mlp", "sklearn:wine", {}),
    ("image", "cnn", "images:digits", {"channels": [4]}),
    ("one-class", "cnn", "images:digits#positive=0", {"channels": [4]}),
    ("segmentation", "unet", "seg:vessels#size=32&n=8", {"channels": [4, 8]}),
])
def test_each_task_supplies_its_own_default_model(task: str, family: str, dataset: str,
                                                  options: dict[str, Any]) -> None:
    from lossbench.models import MODELS

    metric = {"segmentation": "dice"}.get(task, "accuracy")
    suite = parse_suite({"name": "d", "version": "1", "task": task, "datasets": [dataset], "losses": ["ce"]
                         if task != "segmentation" else ["dice"], "primary_metric": metric,
                         "model": options}, "d.toml")
    assert suite.config.model.family == family
    assert set(suite.config.model.options) <= set(MODELS.entry(family).meta["params"])


def test_an_image_suite_without_a_model_family_trains_a_cnn() -> None:
    from lossbench.models.cnn import SmallCNN
    from lossbench.runner import expand
    from lossbench.trial import setup

    suite = parse_suite({"name": "d", "version": "1", "task": "image", "datasets": ["images:digits"],
                         "losses": ["ce"], "primary_metric": "accuracy", "seeds": 1}, "d.toml")
    (spec,), _ = expand(suite)
    assert isinstance(setup(spec).model, SmallCNN)

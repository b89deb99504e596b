"""A plug-in file may define a task type with its own options; parallel workers receive them."""

from __future__ import annotations

import textwrap
from pathlib import Path

from lossbench.backends import BackendConfig
from lossbench.plugins import load_plugins
from lossbench.runner import plan, run
from lossbench.store import ResultStore
from lossbench.suite import parse_suite

PLUGIN = textwrap.dedent('''
    from dataclasses import dataclass, replace

    from lossbench.tasks import TASK_TYPES
    from lossbench.tasks.classification import ClassificationOptions, TabularClassification


    @dataclass(frozen=True)
    class ShrinkOptions:
        keep: float = 1.0  # share of the training rows kept


    class Shrunk(TabularClassification):
        name = "test-shrunk"

        def parse_options(self, table, fail):
            return ShrinkOptions(**table)

        def prepare(self, data, spec):
            keep = spec.config.options.keep
            plain = replace(spec, config=replace(spec.config, options=ClassificationOptions()))
            prepared = super().prepare(data, plain)
            n = max(2, int(keep * len(prepared.train)))
            prepared.train = type(prepared.train)(prepared.train.X[:n], prepared.train.y[:n])
            prepared.info["n_train"] = n
            return prepared


    if "test-shrunk" not in TASK_TYPES:
        TASK_TYPES.register("test-shrunk", Shrunk())
''')


def test_a_plugin_files_task_options_reach_parallel_workers(tmp_path: Path) -> None:
    plugin = tmp_path / "shrunk_task.py"
    plugin.write_text(PLUGIN)
    load_plugins([str(plugin)])
    suite = parse_suite({"name": "p", "version": "1", "task": "test-shrunk", "losses": ["ce", "focal"],
                         "datasets": ["synthetic:classification#n=300"], "primary_metric": "accuracy", "seeds": 1,
                         "training": {"epochs": 1}, "options": {"keep": 0.5}}, "p.toml")
    store = ResultStore(tmp_path / "out")
    rows = run(store, plan(store, suite, plugins=[str(plugin)]), backend=BackendConfig("loky", 2))
    assert [r["status"] for r in rows] == ["ok", "ok"], [r["error_msg"] for r in rows]
    assert {r["n_train"] for r in rows} == {90}  # half of the 180 training rows: the options arrived

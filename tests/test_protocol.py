"""The evaluation protocol is part of every trial key: rows of two protocols never pool, old rows read as 1."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from lossbench.runner import expand, plan, run
from lossbench.schema import UNVERSIONED_PROTOCOL
from lossbench.specs import PROTOCOL, short_hash
from lossbench.store import ResultStore
from lossbench.suite import Suite


def test_the_protocol_is_part_of_the_trial_key(tiny_suite: Suite) -> None:
    (spec, *_), _ = expand(tiny_suite)
    assert spec.key["protocol"] == PROTOCOL == "2"
    assert spec.trial_id == short_hash(spec.key, 20)
    assert short_hash({**spec.key, "protocol": "1"}, 20) != spec.trial_id


def test_rows_carry_the_protocol_and_rows_written_without_it_read_as_protocol_1(tiny_suite: Suite,
                                                                                tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "r")
    run(store, plan(store, tiny_suite, losses=["ce"], seeds=[0]))
    assert set(store.read_trials()["protocol"]) == {PROTOCOL}
    for path in (tmp_path / "r" / "trials").glob("*.parquet"):  # as a lossbench without the column wrote it
        table = pq.read_table(path)
        pq.write_table(table.drop(["protocol"]).replace_schema_metadata(table.schema.metadata), path)
    old = store.read_trials()
    assert list(old["protocol"]) == [UNVERSIONED_PROTOCOL] * len(old)

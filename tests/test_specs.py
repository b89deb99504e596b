from __future__ import annotations

import dataclasses

import pytest

from lossbench.errors import SpecError
from lossbench.specs import DatasetURI, ObjectiveSpec, TrialSpec


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("focal", "focal"),
        ("focal:gamma=2", "focal"),  # the default is dropped
        ("focal:gamma=1", "focal:gamma=1"),
        ("focal:gamma=1.0", "focal:gamma=1"),  # int and float spellings key the same trial
        ("focal:gamma=0.5", "focal:gamma=0.5"),
        (" ce ", "ce"),
    ],
)
def test_loss_spec_canonical_form(text: str, canonical: str) -> None:
    assert str(ObjectiveSpec.parse(text)) == canonical


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("focl", "Did you mean 'focal'"),
        ("focal:gama=1", "has no parameter 'gama'"),
        ("focal:gamma=-1", "must be a float in [0, inf]"),
        ("focal:gamma", "key=value"),
        ("focal:gamma=1,gamma=2", "given twice"),
        ("", "Empty loss spec"),
    ],
)
def test_bad_loss_specs_say_what_to_do(text: str, fragment: str) -> None:
    with pytest.raises(SpecError) as err:
        ObjectiveSpec.parse(text)
    assert fragment in str(err.value)


def test_dataset_uri_round_trip_sorts_options() -> None:
    uri = DatasetURI.parse("csv:data.csv#target=label&sep=;")
    assert (uri.scheme, uri.location, uri.option_dict) == ("csv", "data.csv", {"sep": ";", "target": "label"})
    assert str(uri) == "csv:data.csv#sep=;&target=label"
    assert DatasetURI.parse(str(uri)) == uri


@pytest.mark.parametrize("text", ["breast_cancer", "csv:", "csv:x.csv#target"])
def test_bad_dataset_uris(text: str) -> None:
    with pytest.raises(SpecError):
        DatasetURI.parse(text)


def make_spec(**changes: object) -> TrialSpec:
    base = TrialSpec("s", "1", "classification", "sklearn:wine", "abc", "ce", "1", 0, {"training": {"epochs": 3}},
                     ("accuracy",), "accuracy")
    return dataclasses.replace(base, **changes)


def test_trial_id_is_stable_and_covers_the_whole_key() -> None:
    spec = make_spec()
    assert spec.trial_id == make_spec().trial_id
    assert len(spec.trial_id) == 20
    for change in [{"suite_version": "2"}, {"data_hash": "abd"}, {"loss": "focal"}, {"loss_version": "2"},
                   {"seed": 1}, {"config": {"training": {"epochs": 4}}}, {"dataset": "sklearn:iris"}]:
        assert make_spec(**change).trial_id != spec.trial_id, change


def test_run_time_settings_do_not_change_the_trial_id() -> None:
    spec = make_spec()
    assert make_spec(threads=4, device="cuda", trial_timeout=5.0, metrics=("auroc",)).trial_id == spec.trial_id

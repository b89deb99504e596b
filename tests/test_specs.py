from __future__ import annotations

import dataclasses

import pytest

from lossbench.errors import SpecError
from lossbench.objectives import build_loss, build_method, parse_objective
from lossbench.specs import DatasetURI, ObjectiveSpec, TrialSpec, read_objective
from lossbench.suite import trial_config


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("focal", "focal"),
        ("focal:gamma=2", "focal"),  # the default is dropped
        ("focal:gamma=1", "focal:gamma=1"),
        ("focal:gamma=1.0", "focal:gamma=1"),  # int and float spellings key the same trial
        ("focal:gamma=0.5", "focal:gamma=0.5"),
        (" ce ", "ce"),
        ("dro-kl:base=focal", "dro-kl:base=focal"),
        ("dro-kl:r=2,base=focal(gamma=1)", "dro-kl:base=focal(gamma=1),r=2"),  # keys sorted
        ("dro-kl:base=focal(gamma=2.0)", "dro-kl:base=focal"),  # the wrapped loss's defaults dropped too
        ("dro-kl:base=ce", "dro-kl"),
        ("dro-kl:base=ce()", "dro-kl"),
        ("rankmixup-mrl:base=ce", "rankmixup-mrl"),  # a method's default base loss is not written
        ("rankmixup-mrl:base=focal( gamma = 1 )", "rankmixup-mrl:base=focal(gamma=1)"),
        ("focal(gamma=1)", "focal:gamma=1"),
    ],
)
def test_loss_spec_canonical_form(text: str, canonical: str) -> None:
    assert str(parse_objective(text)) == canonical
    assert parse_objective(str(parse_objective(text))) == parse_objective(text)


def test_equal_objectives_key_equal_trials() -> None:
    spelled = [make_spec(objective=parse_objective(t)).trial_id
               for t in ("dro-kl:base=focal(gamma=1),r=1", "dro-kl:base=focal(gamma=1.0)", "dro-kl:base=focal(gamma=1)")]
    assert len(set(spelled)) == 1
    assert make_spec(objective=parse_objective("dro-kl:base=focal")).trial_id != spelled[0]


def test_wrapped_loss_parameters_reach_the_loss_that_is_trained() -> None:
    dro = build_loss(parse_objective("dro-kl:base=focal(gamma=0.5)"))
    assert dro.base_loss.info.name == "focal" and dro.base_loss.gamma == 0.5
    mixup = parse_objective("rankmixup-mrl:base=focal(gamma=0.5),a=0.5")
    assert mixup.loss_name == "focal" and mixup.method_name == "rankmixup-mrl" and mixup.param_dict == {"a": 0.5}
    assert build_loss(mixup).gamma == 0.5 and build_method(mixup).params["a"] == 0.5
    assert mixup.version == "1+1"


def test_reading_a_spec_needs_no_registry() -> None:
    raw = read_objective("dro-kl:base=focal(gamma=1,x=y),r=2")
    assert raw.kind == "" and raw.name == "dro-kl"
    assert dict(raw.params) == {"base": ObjectiveSpec("focal", params=(("gamma", 1), ("x", "y"))), "r": 2}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("focl", "Did you mean 'focal'"),
        ("focal:gama=1", "has no parameter 'gama'"),
        ("focal:gamma=-1", "must be a float in [0, inf]"),
        ("focal:gamma", "key=value"),
        ("focal:gamma=1,gamma=2", "given twice"),
        ("", "Empty loss spec"),
        ("dro-kl:base=nope", "cannot wrap unknown loss 'nope'"),
        ("dro-kl:base=anyloss-f1", "needs a per-sample base loss"),
        ("dro-kl:base=focal(gama=1)", "has no parameter 'gama'"),
        ("dro-kl:base=focal(gamma=-1)", "must be a float in [0, inf]"),
        ("dro-kl:base=focal:gamma=1", "base=focal(gamma=1)"),
        ("dro-kl:base=focal(gamma=1", "Unbalanced '('"),
        ("rankmixup-mrl:base=nope", "wraps unknown loss 'nope'"),
        ("rankmixup-mrl:b=1", "has no parameter 'b'"),
    ],
)
def test_bad_loss_specs_say_what_to_do(text: str, fragment: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_objective(text)
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
    base = TrialSpec("s", "1", "classification", "sklearn:wine", "abc", parse_objective("ce"), 0,
                     trial_config("classification", {"training": {"epochs": 3}}), ("accuracy",), "accuracy")
    return dataclasses.replace(base, **changes)


def test_trial_id_is_stable_and_covers_the_whole_key() -> None:
    spec = make_spec()
    assert spec.trial_id == make_spec().trial_id
    assert len(spec.trial_id) == 20
    for change in [{"suite_version": "2"}, {"data_hash": "abd"}, {"objective": parse_objective("focal")},
                   {"objective": ObjectiveSpec("ce", "loss", version="2")},
                   {"seed": 1}, {"config": trial_config("classification", {"training": {"epochs": 4}})},
                   {"dataset": "sklearn:iris"}]:
        assert make_spec(**change).trial_id != spec.trial_id, change


def test_run_time_settings_do_not_change_the_trial_id() -> None:
    spec = make_spec()
    assert make_spec(threads=4, device="cuda", trial_timeout=5.0, metrics=("auroc",)).trial_id == spec.trial_id

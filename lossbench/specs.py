"""The canonical strings everything is keyed on: loss specs, dataset URIs, trial keys.

One syntax everywhere (command line, suite files, result columns, reports)::

    focal                  a registered loss with its defaults
    focal:gamma=1          a parameterised loss (keys sorted, defaults dropped)
    dro-kl:base=focal,r=2  a wrapper naming the loss it wraps
    rankmixup-mrl          a training method (its base loss is ``ce`` unless base= says otherwise)

Dataset URIs are ``scheme:location[#key=value&key=value]``, for example
``sklearn:breast_cancer``, ``openml:310`` or ``csv:data.csv#target=label``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from lossbench.errors import SpecError
from lossbench.losses import LOSSES
from lossbench.methods import METHODS

SPEC_HELP = "Write NAME or NAME:key=value,key=value, for example focal:gamma=1."


def parse_value(text: str) -> Any:
    """Parse one parameter value: bool, int, float, or a bare string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def split_params(text: str, sep: str, what: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(sep))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise SpecError(f"Cannot parse {part!r} in {what}.", "Parameters are written key=value.")
        if key.strip() in params:
            raise SpecError(f"Parameter {key.strip()!r} is given twice in {what}.")
        params[key.strip()] = parse_value(value)
    return params


@dataclass(frozen=True)
class ObjectiveSpec:
    """A loss or training method with validated parameters.

    ``kind`` is ``"loss"`` or ``"method"``; a method carries the loss it wraps in ``base``.
    """

    name: str
    kind: str
    params: tuple[tuple[str, Any], ...] = ()
    base: str | None = None

    @classmethod
    def parse(cls, text: str) -> ObjectiveSpec:
        if not isinstance(text, str) or not text.strip():
            raise SpecError(f"Empty loss spec {text!r}.", SPEC_HELP)
        name, _, rest = text.strip().partition(":")
        name = name.strip()
        params = split_params(rest, ",", f"loss spec {text!r}")
        if name in LOSSES:
            cls_ = LOSSES.get(name)
            # validates parameters now, at the boundary
            cls_(**params, **_dummy_context(cls_.needs_for(params)))
            info = cls_.info
            validated = _validated(info.params, name, params)
            kept = {k: v for k, v in validated.items() if v != info.params[k].default}
            return cls(name, "loss", tuple(sorted(kept.items())))
        if name in METHODS:
            mcls = METHODS.get(name)
            base = params.pop("base", mcls.info.base_loss)
            if base not in LOSSES:
                raise SpecError(f"Method {name!r} wraps unknown loss {base!r}.", LOSSES.suggest(str(base)))
            mcls(**params)
            info_m = mcls.info
            validated_m = _validated(info_m.params, name, params)
            kept = {k: v for k, v in validated_m.items() if v != info_m.params[k].default}
            return cls(name, "method", tuple(sorted(kept.items())), base=base)
        known = LOSSES.names() + METHODS.names()
        import difflib

        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = ("Did you mean " + " or ".join(map(repr, close)) + "? ") if close else ""
        raise SpecError(f"Unknown loss or method {name!r}.", hint + "See `lossbench list losses`.")

    @property
    def param_dict(self) -> dict[str, Any]:
        return dict(self.params)

    def __str__(self) -> str:
        parts = [f"{k}={format_value(v)}" for k, v in self.params]
        if self.kind == "method" and self.base != METHODS.get(self.name).info.base_loss:
            parts = sorted([*parts, f"base={self.base}"])
        return self.name + (":" + ",".join(parts) if parts else "")

    @property
    def loss_name(self) -> str:
        return self.name if self.kind == "loss" else str(self.base)

    @property
    def method_name(self) -> str:
        return "plain" if self.kind == "loss" else self.name

    @property
    def version(self) -> str:
        if self.kind == "loss":
            return LOSSES.get(self.name).info.version
        return f"{METHODS.get(self.name).info.version}+{LOSSES.get(str(self.base)).info.version}"


def _validated(params: Mapping[str, Any], owner: str, given: Mapping[str, Any]) -> dict[str, Any]:
    return {k: params[k].validate(owner, k, given.get(k, params[k].default)) for k in params}


def _dummy_context(needs: frozenset[str]) -> dict[str, Any]:
    # Only for validating parameters before the data is known.
    dummy = {"class_counts": [1, 1], "n_classes": 2, "n_samples": 2, "seed": 0, "embedding_dim": 2}
    return {k: v for k, v in dummy.items() if k in needs}


@dataclass(frozen=True)
class DatasetURI:
    """``scheme:location#key=value&...``; ``str()`` is the canonical form."""

    scheme: str
    location: str
    options: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def parse(cls, text: str) -> DatasetURI:
        if not isinstance(text, str) or ":" not in text:
            raise SpecError(
                f"Cannot read dataset URI {text!r}.",
                "Write SCHEME:LOCATION, for example sklearn:breast_cancer, openml:310 or "
                "csv:data.csv#target=label.",
            )
        scheme, _, rest = text.strip().partition(":")
        location, _, frag = rest.partition("#")
        if not location:
            raise SpecError(f"Dataset URI {text!r} has no location after {scheme + ':'!r}.")
        options = split_params(frag, "&", f"dataset URI {text!r}")
        return cls(scheme.strip().lower(), location.strip(), tuple(sorted(options.items())))

    @property
    def option_dict(self) -> dict[str, Any]:
        return dict(self.options)

    def __str__(self) -> str:
        frag = "&".join(f"{k}={format_value(v)}" for k, v in self.options)
        return f"{self.scheme}:{self.location}" + (f"#{frag}" if frag else "")


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def short_hash(obj: Any, n: int = 16) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:n]


#: The columns whose values identify a trial; trial_id is their hash.
KEY_FIELDS = (
    "suite", "suite_version", "task", "dataset", "data_hash", "loss", "loss_version", "seed", "config_hash",
)


@dataclass(frozen=True)
class TrialSpec:
    """Everything a worker needs to run one trial, and nothing it must share with another."""

    suite: str
    suite_version: str
    task: str
    dataset: str
    data_hash: str
    loss: str
    loss_version: str
    seed: int
    config: Mapping[str, Any] = field(default_factory=dict)  # model, training, split, task options
    metrics: tuple[str, ...] = ()
    primary_metric: str = ""
    # Run-time settings: they change how a trial runs, not what it measures.
    trial_timeout: float | None = None
    device: str = "cpu"
    threads: int = 1
    plugins: tuple[str, ...] = ()  # modules a worker imports first (``--plugin``): they register extra losses

    @property
    def config_hash(self) -> str:
        return short_hash(self.config)

    @property
    def key(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in KEY_FIELDS}

    @property
    def trial_id(self) -> str:
        return short_hash(self.key, 20)

    @property
    def objective(self) -> ObjectiveSpec:
        return ObjectiveSpec.parse(self.loss)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

"""The canonical strings everything is keyed on, as plain values: loss and method specs, dataset URIs, trial keys.

One syntax everywhere (command line, suite files, result columns, reports)::

    focal                         a registered loss with its defaults
    focal:gamma=1                 a parameterised loss (keys sorted, defaults dropped)
    dro-kl:base=focal(gamma=1),r=2  a wrapper and the loss it wraps, with that loss's own parameters
    rankmixup-mrl                 a training method (its base loss is ``ce`` unless base= says otherwise)
    rankmixup-mrl:base=focal(gamma=1)

A nested loss is written ``name(key=value,...)``, or ``name`` alone with its defaults. Dataset URIs are
``scheme:location[#key=value&key=value]``, for example ``sklearn:breast_cancer``, ``openml:310`` or
``csv:data.csv#target=label``.

This module reads the syntax only. Which names exist and which parameters they take is checked against the
registries by :func:`lossbench.objectives.parse_objective`, the one place a spec is validated.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from lossbench.config import TrialConfig
from lossbench.errors import SpecError

SPEC_HELP = "Write NAME or NAME:key=value,key=value, for example focal:gamma=1 or dro-kl:base=focal(gamma=1)."


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
    if isinstance(value, ObjectiveSpec):
        return value.nested()
    return str(value)


def split_top_level(text: str, sep: str, what: str) -> list[str]:
    """``text`` split at ``sep`` outside parentheses (a nested spec keeps its own commas)."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise SpecError(f"Unbalanced ')' in {what}.", SPEC_HELP)
        elif char == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise SpecError(f"Unbalanced '(' in {what}.", SPEC_HELP)
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def split_params(text: str, sep: str, what: str, nested: bool = False) -> dict[str, Any]:
    """``key=value`` pairs; with ``nested``, a value ``name(...)`` is a nested :class:`ObjectiveSpec`."""
    params: dict[str, Any] = {}
    for part in split_top_level(text, sep, what) if nested else filter(None, (p.strip() for p in text.split(sep))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise SpecError(f"Cannot parse {part!r} in {what}.", "Parameters are written key=value.")
        if key.strip() in params:
            raise SpecError(f"Parameter {key.strip()!r} is given twice in {what}.")
        value = value.strip()
        if nested and value.endswith(")"):
            params[key.strip()] = read_objective(value)
        elif nested and ":" in value:
            name, _, inner = value.partition(":")
            raise SpecError(f"Cannot read {part!r} in {what}: a nested loss takes its parameters in parentheses.",
                            f"Write {key.strip()}={name}({inner}).")
        else:
            params[key.strip()] = parse_value(value)
    return params


@dataclass(frozen=True)
class ObjectiveSpec:
    """A loss or a training method with its parameters; ``str()`` is the canonical form.

    ``params`` are sorted with defaults dropped once validated (:func:`lossbench.objectives.parse_objective`); a
    parameter that names a wrapped loss (``base``) holds a nested ``ObjectiveSpec``. A method also carries the
    loss it trains with in ``loss`` (its ``base``, written in ``params`` only when it is not the default).
    ``kind`` is ``"loss"`` or ``"method"``, empty for a spec that has only been read, not validated.
    """

    name: str
    kind: str = ""
    params: tuple[tuple[str, Any], ...] = ()
    loss: ObjectiveSpec | None = None
    version: str = ""

    def __str__(self) -> str:
        parts = [f"{k}={format_value(v)}" for k, v in self.params]
        return self.name + (":" + ",".join(parts) if parts else "")

    def nested(self) -> str:
        """The form this spec takes as another spec's parameter: ``name(key=value,...)``."""
        parts = [f"{k}={format_value(v)}" for k, v in self.params]
        return self.name + ("(" + ",".join(parts) + ")" if parts else "")

    @property
    def loss_spec(self) -> ObjectiveSpec:
        """The loss that is trained: this spec itself, or a method's base loss."""
        return self if self.loss is None else self.loss

    @property
    def loss_name(self) -> str:
        return self.loss_spec.name

    @property
    def method_name(self) -> str:
        return "plain" if self.loss is None else self.name

    @property
    def param_dict(self) -> dict[str, Any]:
        """Keyword arguments of the loss or method class; a nested loss as its text, a method's base left out."""
        return {k: v.nested() if isinstance(v, ObjectiveSpec) else v for k, v in self.params
                if not (self.loss is not None and k == "base")}


def read_objective(text: str) -> ObjectiveSpec:
    """The syntax of a spec, ``name[:key=value,...]`` or ``name(key=value,...)``, not checked against any registry."""
    if not isinstance(text, str) or not text.strip():
        raise SpecError(f"Empty loss spec {text!r}.", SPEC_HELP)
    text = text.strip()
    paren, colon = text.find("("), text.find(":")
    if paren > 0 and (colon < 0 or paren < colon):
        if not text.endswith(")"):
            raise SpecError(f"Cannot read loss spec {text!r}: text after the closing parenthesis.", SPEC_HELP)
        name, inner = text[:paren], text[paren + 1 : -1]
    else:
        name, _, inner = text.partition(":")
    params = split_params(inner, ",", f"loss spec {text!r}", nested=True)
    return ObjectiveSpec(name.strip(), params=tuple(params.items()))


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


#: The evaluation protocol: how every trial is run and measured, whatever the suite. Bump it (and say what moved
#: in CHANGELOG.md and docs/results.md) when a change moves results on purpose: it is part of every trial key, so
#: rows of two protocols never pool and a rerun does not resume into old rows. Rows without it are protocol 1.
PROTOCOL = "2"

#: The columns whose values identify a trial; trial_id is their hash.
KEY_FIELDS = (
    "suite", "suite_version", "task", "dataset", "data_hash", "loss", "loss_version", "seed", "config_hash",
    "protocol",
)


@dataclass(frozen=True)
class TrialSpec:
    """Everything a worker needs to run one trial, and nothing it must share with another."""

    suite: str
    suite_version: str
    task: str
    dataset: str
    data_hash: str
    objective: ObjectiveSpec  # the loss or method, validated; its text is the ``loss`` column
    seed: int
    config: TrialConfig = field(default_factory=TrialConfig)  # model, training, split, task options
    metrics: tuple[str, ...] = ()
    primary_metric: str = ""
    # Run-time settings: they change how a trial runs, not what it measures.
    trial_timeout: float | None = None
    device: str = "cpu"
    threads: int = 1
    plugins: tuple[str, ...] = ()  # modules a worker imports first (``--plugin``): they register extra losses

    @property
    def loss(self) -> str:
        return str(self.objective)

    @property
    def loss_version(self) -> str:
        return self.objective.version

    @property
    def config_hash(self) -> str:
        return short_hash(self.config.canonical())

    @property
    def protocol(self) -> str:
        return PROTOCOL

    @property
    def key(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in KEY_FIELDS}

    @property
    def trial_id(self) -> str:
        return short_hash(self.key, 20)


"""Loss and method specs checked against the registries, and the losses and methods they build.

:func:`parse_objective` is the one place a spec string becomes a validated, canonical
:class:`~lossbench.specs.ObjectiveSpec`: names resolved, parameters validated against the declared
:class:`~lossbench.losses.base.Param`\\ s without building anything, defaults dropped, keys sorted. The driver
parses each spec once; trials carry the result. :func:`build_loss` and :func:`build_method` turn it into objects.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from lossbench.errors import SpecError
from lossbench.losses import LOSSES, LossBase, Param, make_loss
from lossbench.methods import METHODS, Method
from lossbench.specs import ObjectiveSpec, read_objective

#: The parameter that names a wrapped loss: a method's base loss, or the loss a wrapper loss (dro-kl) re-weights.
WRAPPED = "base"


def parse_objective(spec: str | ObjectiveSpec) -> ObjectiveSpec:
    """A validated, canonical loss or method spec; a :class:`~lossbench.errors.SpecError` says what to fix."""
    raw = read_objective(spec) if isinstance(spec, str) else spec
    if raw.name in LOSSES:
        return _loss(raw)
    if raw.name in METHODS:
        return _method(raw)
    close = difflib.get_close_matches(raw.name, LOSSES.names() + METHODS.names(), n=3, cutoff=0.5)
    hint = ("Did you mean " + " or ".join(map(repr, close)) + "? ") if close else ""
    raise SpecError(f"Unknown loss or method {raw.name!r}.", hint + "See `lossbench list losses`.")


def _loss(raw: ObjectiveSpec) -> ObjectiveSpec:
    info = LOSSES.get(raw.name).info
    given = dict(raw.params)
    _refuse_unknown(f"Loss {raw.name!r}", given, info.params)
    if WRAPPED in given and WRAPPED in info.params:
        # a loss that wraps another combines that loss's per-sample values
        given[WRAPPED] = _wrapped(given[WRAPPED], f"Loss {raw.name!r}", per_sample=True)
    kept = _non_default(raw.name, given, info.params)
    return ObjectiveSpec(raw.name, "loss", kept, version=info.version)


def _method(raw: ObjectiveSpec) -> ObjectiveSpec:
    info = METHODS.get(raw.name).info
    given = dict(raw.params)
    if not info.uses_base_loss and WRAPPED in given:
        raise SpecError(f"Method {raw.name!r} trains with its own objective; it takes no {WRAPPED}= loss.",
                        f"Remove {WRAPPED}= from the spec.")
    loss = _wrapped(given.pop(WRAPPED, info.base_loss), f"Method {raw.name!r}", per_sample=False)
    _refuse_unknown(f"Method {raw.name!r}", given, info.params)
    kept = dict(_non_default(raw.name, given, info.params))
    if loss.nested() != info.base_loss:
        kept[WRAPPED] = loss
    return ObjectiveSpec(raw.name, "method", tuple(sorted(kept.items())), loss=loss,
                         version=f"{info.version}+{loss.version}")


def _wrapped(value: Any, owner: str, per_sample: bool) -> ObjectiveSpec:
    raw = value if isinstance(value, ObjectiveSpec) else ObjectiveSpec(str(value))
    if raw.name not in LOSSES:
        verb = "cannot wrap" if owner.startswith("Loss") else "wraps"
        raise SpecError(f"{owner} {verb} unknown loss {raw.name!r}.", LOSSES.suggest(raw.name))
    if per_sample and LOSSES.get(raw.name).info.batch_level:
        raise SpecError(f"{owner} needs a per-sample base loss; {raw.name!r} returns one value per batch.",
                        "Choose a per-sample loss such as ce, focal or gce.")
    return _loss(raw)


def _refuse_unknown(owner: str, given: Mapping[str, Any], params: Mapping[str, Param]) -> None:
    unknown = set(given) - set(params)
    if unknown:
        raise SpecError(f"{owner} has no parameter {sorted(unknown)[0]!r}.",
                        f"Its parameters are: {', '.join(params) or 'none'}.")


def _non_default(owner: str, given: Mapping[str, Any], params: Mapping[str, Param]) -> tuple[tuple[str, Any], ...]:
    kept = {}
    for key, value in given.items():
        if isinstance(value, ObjectiveSpec):  # a wrapped loss: validated above, compared by its text
            if value.nested() != params[key].default:
                kept[key] = value
            continue
        value = params[key].validate(owner, key, value)
        if value != params[key].default:
            kept[key] = value
    return tuple(sorted(kept.items()))


def applicable_tasks(spec: ObjectiveSpec) -> frozenset[str]:
    """The loss tasks a loss or method spec can train on: its method's and its loss's, unless the method brings its
    own objective (then the method's alone)."""
    method = METHODS.get(spec.method_name).info
    if not method.uses_base_loss:
        return method.tasks
    return LOSSES.get(spec.loss_name).info.tasks & method.tasks


def check_task(spec: ObjectiveSpec, task: Any) -> None:
    """Refuse, before any training, a loss or method that applies to nothing the task type ``task`` trains
    (``ar2`` in a classification suite, ``ce`` in an unlearning suite): it could never train there."""
    from lossbench.tasks import TASK_TYPES  # imported late: the task modules import torch models and sklearn

    tasks = applicable_tasks(spec)
    if tasks & task.loss_tasks:
        return
    if spec.kind == "method" and not METHODS.get(spec.method_name).info.tasks & task.loss_tasks:
        declared = METHODS.get(spec.method_name).info.tasks
        homes = [name for name in TASK_TYPES.names() if TASK_TYPES.get(name).loss_tasks & declared]
        raise SpecError(f"{spec.method_name!r} is a method for {' or '.join(sorted(declared))} data; the suite's "
                        f"task is {task.name}.",
                        f"Run it in a suite whose task is {' or '.join(homes) or 'one that declares it'}, or remove it.")
    fits = sorted(e.name for e in METHODS if not e.obj.info.uses_base_loss and e.obj.info.tasks & task.loss_tasks)
    hint = (f"The {task.name!r} task runs the methods {', '.join(fits)}." if fits
            else f"Choose a loss declared for {', '.join(sorted(task.loss_tasks))} (`lossbench list losses`).")
    raise SpecError(f"{str(spec)!r} is declared for {', '.join(sorted(tasks)) or 'no task'}; the {task.name!r} task "
                    f"needs one declared for {', '.join(sorted(task.loss_tasks))}.", hint)


def build_loss(spec: ObjectiveSpec, **context: Any) -> LossBase:
    """The loss a spec trains with (a method's base loss), given everything a loss may need at construction."""
    loss = spec.loss_spec
    return make_loss(loss.name, loss.param_dict, **context)


def build_method(spec: ObjectiveSpec) -> Method:
    """The training method of a spec: ``plain`` for a loss."""
    return METHODS.get(spec.method_name)(**(spec.param_dict if spec.loss is not None else {}))

"""Code the user names explicitly: ``--plugin`` modules and ``.py`` files.

Installed packages extend lossbench through entry points, which each :class:`~lossbench.registry.Registry`
loads on first use; ``load_plugins`` is the other way in, for code that is not installed. Both only import:
the imported module's ``register`` calls do the rest.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from lossbench.errors import UserError

#: Module name under which a plug-in file is imported (``--plugin path/to/x.py`` becomes ``lossbench_plugin_x``).
FILE_PREFIX = "lossbench_plugin_"


def load_plugins(modules: Sequence[str]) -> None:
    """Import plug-ins named by the user: a module name, or a path to a ``.py`` file.

    Importing registers their losses, methods, metrics or task types. A path works in any worker, whatever
    its ``sys.path``; each is imported once per process.
    """
    for name in modules:
        if name.endswith(".py"):
            load_file(name)
            continue
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise UserError(f"Cannot import plug-in module {name!r} ({exc}).",
                            "Check the module name and that it is on PYTHONPATH, or pass a .py file path.") from None


def load_file(name: str) -> None:
    path = Path(name).resolve()
    module_name = f"{FILE_PREFIX}{path.stem}"
    if module_name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None or not path.is_file():
        raise UserError(f"Cannot load plug-in file {name!r}.", "Check the path.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    pickle_by_value(module)


def pickle_by_value(module: ModuleType) -> None:
    """Send the module's classes to worker processes by value: a worker cannot import a plug-in file by name,
    yet trial specs may hold its objects (a plug-in task type's options)."""
    for name in ("joblib.externals.cloudpickle", "cloudpickle"):  # loky's copy, and dask's
        with contextlib.suppress(ImportError, AttributeError):
            importlib.import_module(name).register_pickle_by_value(module)

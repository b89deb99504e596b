"""Suite files, results and datasets are data: nothing in them is executed or unpickled."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from lossbench.cli.app import app

PACKAGE = Path(__file__).resolve().parents[1] / "lossbench"
#: Calls that run or unpickle code. Allowed: importing a plug-in the user named with --plugin, and the CIFAR
#: reader's restricted unpickler, whose find_class resolves only the numpy array constructors (nothing callable
#: beyond them can be reached from a CIFAR batch file), and the unlearning cache's tensors read with torch's
#: ``weights_only`` loader (tensors and plain containers only, no code).
DANGEROUS = re.compile(r"(?<![.\w])(pickle|cloudpickle|dill|marshal|torch\.load|joblib\.load|eval|exec|yaml\.load|"
                       r"__import__|compile|runpy)\s*[.(]")  # not x.eval(): that is torch's nn.Module.eval
ALLOWED = {
    ("trial.py", "spec.loader.exec_module(module)"),
    ("images.py", "class _CifarUnpickler(pickle.Unpickler):"),
    ("images.py", 'raise pickle.UnpicklingError(f"refusing {module}.{name} in a CIFAR batch")'),
    ("images.py", "except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:"),
    ("cache.py", 'value = torch.load(path, map_location="cpu", weights_only=True)'),
}


def test_no_code_path_evaluates_or_unpickles_files() -> None:
    hits = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for line in path.read_text(encoding="utf-8").splitlines():
            code = line.split("#", 1)[0]
            if DANGEROUS.search(code) and (path.name, code.strip()) not in ALLOWED:
                hits.append(f"{path.relative_to(PACKAGE)}: {line.strip()}")
    assert not hits, hits


def test_a_suite_file_holding_code_is_only_data(tmp_path: Path) -> None:
    canary = tmp_path / "pwned"
    payload = f"__import__('os').system('touch {canary}')"
    suite = tmp_path / "evil.toml"
    suite.write_text(
        f'name = "evil"\nversion = "1"\ntask = "classification"\n'
        f'datasets = ["synthetic:classification#n=60"]\nlosses = ["ce"]\nprimary_metric = "accuracy"\n'
        f'description = "{payload}"\n[model]\nfamily = "mlp"\n'
    )
    result = CliRunner().invoke(app, ["run", "--suite", str(suite), "--dry-run", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    named = tmp_path / "named.toml"
    named.write_text(suite.read_text().replace('name = "evil"', f'name = "{payload}"'))
    result = CliRunner().invoke(app, ["run", "--suite", str(named), "--dry-run", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "is not a plain name" in result.output
    bad = tmp_path / "evil2.toml"
    bad.write_text(f'name = "x"\nversion = "1"\ntask = "classification"\ndatasets = ["{payload}"]\n'
                   f'losses = ["ce"]\nprimary_metric = "accuracy"\n')
    result = CliRunner().invoke(app, ["run", "--suite", str(bad), "--dry-run", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert not canary.exists()

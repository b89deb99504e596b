"""Snapshot the standard-library query–document corpus into ``lossbench/data/stdlib_docs.jsonl.gz``.

Queries are public function signatures (``json.dumps(obj, *, skipkeys=False, ...)``), documents their
docstrings. The snapshot is committed so the benchmark does not change with the Python version; rerun this
script only to refresh it deliberately. Docstrings are from CPython (Python Software Foundation License,
which permits redistribution with the licence notice; see lossbench/data/README.md).

    python benchmarks/build_stdlib_corpus.py
"""

from __future__ import annotations

import gzip
import importlib
import inspect
import json
import re
import sys
from pathlib import Path

MODULES = (
    "abc", "argparse", "ast", "asyncio", "base64", "bisect", "calendar", "codecs", "collections", "colorsys",
    "contextlib", "copy", "csv", "datetime", "difflib", "email.utils", "fnmatch", "fractions", "functools",
    "glob", "gzip", "hashlib", "heapq", "hmac", "html", "inspect", "io", "ipaddress", "itertools", "json",
    "logging", "math", "mimetypes", "operator", "os", "os.path", "pathlib", "pickle", "platform", "pprint",
    "random", "re", "shlex", "shutil", "socket", "statistics", "string", "struct", "subprocess", "tarfile",
    "tempfile", "textwrap", "threading", "time", "timeit", "tokenize", "traceback", "types", "typing",
    "unicodedata", "urllib.parse", "uuid", "warnings", "zipfile", "zlib",
)
MAX_DOC_CHARS = 800
MIN_DOC_CHARS = 40
OUT = Path(__file__).resolve().parents[1] / "lossbench" / "data" / "stdlib_docs.jsonl.gz"


def members(module_name: str) -> list[dict[str, str]]:
    module = importlib.import_module(module_name)
    rows = []
    for name in sorted(getattr(module, "__all__", None) or dir(module)):
        if name.startswith("_"):
            continue
        obj = getattr(module, name, None)
        if not (inspect.isfunction(obj) or inspect.isbuiltin(obj)):
            continue
        doc = inspect.getdoc(obj) or ""
        try:
            # object reprs carry memory addresses; drop them so the snapshot is reproducible
            signature = re.sub(r" at 0x[0-9a-f]+", "", str(inspect.signature(obj)))
        except (TypeError, ValueError):
            continue
        if len(doc) < MIN_DOC_CHARS:
            continue
        rows.append({"module": module_name, "name": name, "query": f"{module_name}.{name}{signature}",
                     "document": doc[:MAX_DOC_CHARS]})
    return rows


def main() -> None:
    rows, seen = [], set()
    for m in MODULES:
        for row in members(m):
            if row["document"] in seen:  # one document per query: duplicates would be false negatives
                continue
            seen.add(row["document"])
            rows.append(row)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(OUT, "wb", mtime=0) as fh:
        for row in rows:
            fh.write((json.dumps(row, ensure_ascii=False) + "\n").encode())
    print(f"{len(rows)} pairs from {len({r['module'] for r in rows})} modules (Python {sys.version.split()[0]}) -> {OUT}")


if __name__ == "__main__":
    main()

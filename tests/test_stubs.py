"""The .pyi stubs of the compiled modules list exactly what the bindings define, with the same
parameter names. _cuda is not built on the default test leg, so its bindings are read from
csrc/bind_cuda.cpp; _cpu is compared with both its source and the built module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def stub(module: str) -> dict[str, list[str] | None]:
    """Top-level names of cchmi/<module>.pyi: functions with their parameter names, attributes (None)."""
    tree = ast.parse((ROOT / "cchmi" / f"{module}.pyi").read_text())
    names: dict[str, list[str] | None] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            names[node.name] = [a.arg for a in node.args.args]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = None
    return names


def bindings(source: str) -> dict[str, list[str] | None]:
    """m.def("name", ..., py::arg("a"), ...) and m.attr("name") of a pybind11 module source.
    Overloads must agree on their parameters."""
    text = (ROOT / "csrc" / source).read_text()
    names: dict[str, list[str] | None] = {name: None for name in re.findall(r'm\.attr\(\s*"(\w+)"\s*\)', text)}
    for block in re.split(r"(?=\bm\.(?:def|attr)\()", text):
        found = re.match(r'm\.def\(\s*"(\w+)"', block)
        if not found:
            continue
        name, args = found.group(1), re.findall(r'py::arg\(\s*"(\w+)"\s*\)', block)
        lambda_args = re.search(r"\[\]\s*\(([^)]*)\)", block)
        if not args and lambda_args and lambda_args.group(1).strip():
            pytest.fail(f"{source}: {name} takes arguments without py::arg names")
        assert names.setdefault(name, args) == args, f"{source}: overloads of {name} differ in parameters"
    return names


def test_cpu_stub_matches_bindings_and_module():
    import cchmi._cpu as cpu

    expected = bindings("bind_cpu.cpp")
    assert stub("_cpu") == expected
    assert {name for name in dir(cpu) if not name.startswith("_")} == set(expected)


def test_cuda_stub_matches_bindings():
    expected = bindings("bind_cuda.cpp")
    assert {"knn", "count_within_pair", "tile_rows", "max_k"} <= set(expected)  # the parser sees them
    assert stub("_cuda") == expected

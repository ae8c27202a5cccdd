"""engine/ builds on the public API of its dependencies: no private name (`_x`) of another
package, which a minor release may change without notice (docs: STYLE.md)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[2] / "engine"
# A named tuple's own methods and attributes are public; the underscore only keeps them
# apart from field names.
NAMED_TUPLE_API = frozenset({"_asdict", "_field_defaults", "_fields", "_make", "_replace"})


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_path(dotted: str) -> bool:
    return any(_private(part) for part in dotted.split("."))


def _ours(module: str | None, level: int) -> bool:
    return level > 0 or module == "engine" or (module or "").startswith("engine.")


def private_uses(source: str) -> Iterator[tuple[int, str]]:
    """(line, what) for each private name of another package the module reaches."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not _ours(alias.name, 0) and _private_path(alias.name):
                    yield node.lineno, f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom) and not _ours(node.module, node.level):
            module = node.module or ""
            if module != "__future__" and _private_path(module):
                yield node.lineno, f"from {module} import …"
            for alias in node.names:
                if _private(alias.name):
                    yield node.lineno, f"from {module} import {alias.name}"
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue  # the class's own state
            if node.attr not in NAMED_TUPLE_API:
                yield node.lineno, f"attribute {ast.unparse(node)}"
        elif isinstance(node, ast.Call):
            function = ast.unparse(node.func)
            if function in ("importlib.import_module", "import_module", "__import__"):
                named = node.args[0] if node.args else None
                if not (isinstance(named, ast.Constant) and isinstance(named.value, str)):
                    # A module named at run time cannot be checked here: name it in the code.
                    yield node.lineno, f"{function}() of a module named at run time"
                elif not _ours(named.value, 0) and _private_path(named.value):
                    yield node.lineno, f"{function}({named.value!r})"
            elif function == "getattr" and len(node.args) > 1:
                name = node.args[1]
                if isinstance(name, ast.Constant) and _private(str(name.value)):
                    yield node.lineno, f"getattr(…, {name.value!r})"


@pytest.mark.parametrize(
    "source",
    [
        "from markupsafe._speedups import _escape_inner",
        "import markupsafe._speedups",
        "from python_http_client.client import _helper",
        "client._build_url(None)",
        "response = Response(client._make_request(opener, prepared, 30))",
        "constructor = importlib.import_module('_sha256')",
        "for name in ('_sha256', '_sha2'):\n    module = importlib.import_module(name)",
        "value = getattr(module, '_private')",
    ],
)
def test_the_check_sees_each_way_of_reaching_a_private_name(source: str) -> None:
    assert list(private_uses(source)) != []


@pytest.mark.parametrize(
    "source",
    [
        "from __future__ import annotations",
        "from engine.render import _local",  # our own package: not another's
        "self._pool = None",
        "row._replace(email=None)",
        "fields = SignatureRow._fields",
        "value = getattr(settings, 'secret_key')",
        "def __init__(self) -> None: ...",
    ],
)
def test_public_names_and_our_own_pass(source: str) -> None:
    assert list(private_uses(source)) == []


def test_no_engine_module_reaches_a_private_name_of_another_package() -> None:
    found = [
        f"{path.relative_to(ENGINE.parent)}:{line}: {what}"
        for path in sorted(ENGINE.rglob("*.py"))
        for line, what in private_uses(path.read_text(encoding="utf-8"))
    ]
    assert found == []

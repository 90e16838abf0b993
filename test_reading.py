"""The house a student reads: the guided reading names real functions, and the shape stays readable.

docs/READING.md names functions as `module.name` or `module.Class.method`;
each must exist, or the guide has fallen behind the code. The shape checks
are the limits the restructuring into two edges around one chat core set
(issue #21): small classes and functions, no module that holds most of the
code, no import cycles, edges that do not reach into each other, and one
place each for a room's broadcast and a single client's frame.
"""

import ast
import importlib
import os
import re

import pytest

from conftest import HERE

MODULES = ["protocol", "store", "store_postgres", "accounts", "swiftchat_core", "swiftchat_ws",
           "swiftchat_routes", "swiftchat_admin", "export", "files",
           "swiftchat_http", "swiftchat", "openapi"]
EDGES = {"swiftchat_ws": {"swiftchat_http", "swiftchat_routes"},
         "swiftchat_http": {"swiftchat_ws"}, "swiftchat_routes": {"swiftchat_ws"}}


def source(module):
    with open(os.path.join(HERE, f"{module}.py"), encoding="utf-8") as file:
        return file.read()


def guide_references():
    with open(os.path.join(HERE, "docs", "READING.md"), encoding="utf-8") as guide:
        text = guide.read()
    pattern = r"`((?:%s)(?:\.\w+)+)`" % "|".join(MODULES)
    return sorted({name for name in re.findall(pattern, text) if not name.endswith(".py")})


def test_the_guide_names_many_functions():
    assert len(guide_references()) > 40


@pytest.mark.parametrize("reference", guide_references())
def test_every_function_the_reading_guide_names_exists(reference):
    module_name, *path = reference.split(".")
    target = importlib.import_module(module_name)
    for name in path:
        assert hasattr(target, name), f"{reference}: no {name} in {target!r}"
        target = getattr(target, name)


def stated_sizes():
    """(file, lines) for each `**file** (about N lines...)` of the guide."""
    with open(os.path.join(HERE, "docs", "READING.md"), encoding="utf-8") as guide:
        text = " ".join(guide.read().split())  # a statement may wrap across lines
    return [(name, int(lines.replace(",", ""))) for name, lines in
            re.findall(r"\*\*`([\w/.-]+)`\*\* \(about ([\d,]+)\b", text)]


def test_the_guide_states_the_size_of_every_file_it_names():
    assert len(stated_sizes()) >= 25


@pytest.mark.parametrize("name, stated", stated_sizes())
def test_the_guide_states_each_files_size_within_15_percent(name, stated):
    with open(os.path.join(HERE, name), encoding="utf-8") as file:
        lines = len(file.readlines())
    assert abs(lines - stated) <= 0.15 * lines, f"{name} has {lines} lines, the guide says {stated}"


def sizes(kind):
    for module in MODULES:
        for node in ast.walk(ast.parse(source(module))):
            if isinstance(node, kind):
                yield f"{module}.{node.name}", node.end_lineno - node.lineno + 1


def test_no_function_is_over_60_lines():
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    assert [(name, lines) for name, lines in sizes(functions) if lines > 60] == []


def code_lines(module):
    """Lines that are neither blank, nor comments, nor docstrings."""
    text = source(module)
    docstrings = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) \
                and ast.get_docstring(node) is not None:
            docstrings.update(range(node.body[0].lineno, node.body[0].end_lineno + 1))
    return sum(1 for number, line in enumerate(text.splitlines(), 1)
               if line.strip() and not line.strip().startswith("#") and number not in docstrings)


def test_no_module_holds_over_30_percent_of_the_code():
    counts = {module: code_lines(module) for module in MODULES}
    total = sum(counts.values())
    assert {module: round(n / total, 2) for module, n in counts.items() if n > 0.3 * total} == {}


def project_imports(module):
    imported = set()
    for node in ast.walk(ast.parse(source(module))):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    return imported & set(MODULES)


def test_no_import_cycle():
    imports = {module: project_imports(module) for module in MODULES}

    def reaches(start, goal, seen=()):
        return any(next_module == goal or (next_module not in seen and
                                           reaches(next_module, goal, (*seen, next_module)))
                   for next_module in imports[start])

    assert [module for module in MODULES if reaches(module, module)] == []


@pytest.mark.parametrize("edge", sorted(EDGES))
def test_the_two_edges_import_nothing_from_each_other(edge):
    assert project_imports(edge) & EDGES[edge] == set()


def test_websockets_broadcast_is_called_from_two_places():
    """The room fan-out (broadcast_to) and a single client's frame (Client.send_now)."""
    calls = []
    for module in MODULES:
        for node in ast.walk(ast.parse(source(module))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id == "broadcast":
                calls.append((module, node.lineno))
    assert len(calls) == 2 and {module for module, _ in calls} == {"swiftchat_core"}


@pytest.mark.parametrize("module", MODULES)
def test_every_module_says_what_it_owns_and_declares_its_surface(module):
    tree = ast.parse(source(module))
    assert ast.get_docstring(tree)
    assert any(isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__"
                                                    for t in node.targets) for node in tree.body)

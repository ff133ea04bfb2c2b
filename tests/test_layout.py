"""The shape of the house: `recipe_core` reads as the data flow, has no import cycle (imports
inside functions included) and no lower layer importing a higher one, and only its edges read
the environment (settings.py reads it; the edges below call `load_settings()` and pass it on).

Layers, lowest first. A module may import its own layer and the layers below it. The rank of a
module is that of the longest prefix listed here; a few modules sit below their package because
lower packages rely on them (the job vocabulary and process handling under the run directory,
the storage URL rules under the workspace, the Ray connection under every Ray path).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "recipe_core"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "settings", "jobs.state"),  # vocabulary: imports nothing of Recipe
    ("jobs.process", "jobs.deadline", "runs.storage", "cluster"),  # processes, storage, Ray
    ("workspace",),
    ("data",),  # dataset adapters, the only readers of raw dataset files
    ("scan",),  # dataset -> index -> issues
    ("batch",),  # the exact tensors model(x) receives
    ("runs",),  # the run directory
    ("train",),  # models, the loop, on-device recording
    ("checks",),  # the recipe's checks (they build the built-in models)
    ("dynamics",),  # analyses of what runs recorded
    ("jobs",),  # detached processes and executors: scans, checks, training runs
    ("tune",),  # random search: a loop of ordinary jobs
    ("explore",),  # dashboard services over scans and the workspace
    ("hosting",),  # the team server
    ("",),  # the public face, recipe_core/__init__.py
    ("cli", "__main__"),
)
# Folders in the order the data flows; nothing else is loose in recipe_core/.
STAGES = ("data", "scan", "batch", "checks", "train", "runs", "dynamics", "jobs", "cluster",
          "tune", "explore", "hosting", "cli")  # fmt: skip
LOOSE = {"__init__.py", "__main__.py", "errors.py", "settings.py", "workspace.py"}
# The only modules that may read the environment (settings) or call load_settings(): the CLI,
# the job process entry points, and the package-face calls a script makes without a Settings.
ENV_EDGES = (
    "settings",  # the one reader of os.environ
    "cli",  # `recipe ...`
    "jobs.train_job", "jobs.check_job", "jobs.scan_job", "jobs.see_job",  # job entry points
    "workspace",  # open_workspace()
    "jobs.executors",  # submit_run()
    "jobs.local",  # LocalExecutor(): its jobs inherit this process's environment
    "tune.job",  # start_search(): its driver (then its trials) inherit it the same way
    "scan.index.build",  # build_index(): torch.hub's cache for network embedders
)  # fmt: skip
ENV_NAMES = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name (relative to `root`'s parent) -> file, for every module of the package."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported_modules(name: str, path: Path, modules: Mapping[str, Path]) -> set[str]:
    """The package's modules that `name` imports anywhere in its file (inside functions and
    `if TYPE_CHECKING:` too). `from pkg import sub` counts as importing pkg.sub when sub is a
    module, else pkg; the implicit import of parent packages is not counted."""
    top = name.split(".")[0]
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, name, is_package)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                       for a in node.names]  # fmt: skip
        for target in targets:
            while target and target not in modules:  # `import a.b.c` of a non-module c
                target = target.rpartition(".")[0]
            if target.split(".")[0] == top and target != name:
                found.add(target)
    return found


def _absolute(node: ast.ImportFrom, name: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parent = name.split(".") if is_package else name.split(".")[:-1]
    parent = parent[: len(parent) - node.level + 1]
    return ".".join(parent + ([node.module] if node.module else []))


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = module_files(root)
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (iterative DFS, white/grey/black)."""
    colour = dict.fromkeys(graph, 0)
    for start in sorted(graph):
        if colour[start]:
            continue
        stack: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        colour[start] = 1
        while stack:
            node, todo = stack[-1]
            if not todo:
                colour[node] = 2
                stack.pop()
                continue
            nxt = todo.pop()
            if colour.get(nxt, 2) == 1:
                path = [n for n, _ in stack]
                return [*path[path.index(nxt) :], nxt]
            if colour.get(nxt) == 0:
                colour[nxt] = 1
                stack.append((nxt, sorted(graph[nxt])))
    return None


def rank(module: str, package: str = "recipe_core") -> int:
    relative = module[len(package) + 1 :] if module != package else ""
    best, best_len = -1, -1
    for level, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            hit = relative == prefix or (prefix and relative.startswith(prefix + "."))
            if hit and len(prefix) > best_len:
                best, best_len = level, len(prefix)
    if best < 0:
        raise AssertionError(f"{module} is in no layer: add its folder to LAYERS")
    return best


def layer_breaks(graph: Mapping[str, Iterable[str]]) -> list[str]:
    return sorted(
        f"{low} (layer {rank(low)}) imports {high} (layer {rank(high)})"
        for low, targets in graph.items()
        for high in targets
        if rank(high) > rank(low)
    )


def test_recipe_core_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph(PACKAGE))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_lower_layer_imports_a_higher_one() -> None:
    assert layer_breaks(import_graph(PACKAGE)) == []


def test_the_folders_are_the_stages_and_nothing_else_is_loose() -> None:
    entries = {p.name for p in PACKAGE.iterdir() if p.name != "__pycache__"}
    assert entries == LOOSE | set(STAGES)
    assert all((PACKAGE / stage / "__init__.py").is_file() for stage in STAGES)


def _write(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.mark.parametrize(
    "files",
    [
        {  # a cycle hidden in a function, across packages, through a relative import
            "recipe_core/__init__.py": "",
            "recipe_core/runs/__init__.py": "",
            "recipe_core/runs/writer.py": "def f():\n    from recipe_core.runs import mirror\n",
            "recipe_core/runs/mirror.py": "from .writer import f\n",
        },
        {  # a submodule importing a name its own package's __init__ re-exports from it
            "recipe_core/__init__.py": "",
            "recipe_core/jobs/__init__.py": "from recipe_core.jobs.local import run\n",
            "recipe_core/jobs/local.py": "from recipe_core.jobs import helper\ndef run(): ...\n",
        },
    ],
    ids=["function-level", "through-package-init"],
)
def test_a_planted_cycle_is_found(tmp_path: Path, files: dict[str, str]) -> None:
    _write(tmp_path, files)
    cycle = find_cycle(import_graph(tmp_path / "recipe_core"))
    assert cycle is not None and cycle[0] == cycle[-1] and len(cycle) >= 3


def test_a_planted_layer_break_is_found_and_the_clean_twin_passes(tmp_path: Path) -> None:
    clean = {
        "recipe_core/__init__.py": "",
        "recipe_core/errors.py": "",
        "recipe_core/data/__init__.py": "from recipe_core import errors\n",
        "recipe_core/runs/__init__.py": "import recipe_core.data\n",
    }
    _write(tmp_path, clean)
    assert find_cycle(import_graph(tmp_path / "recipe_core")) is None
    assert layer_breaks(import_graph(tmp_path / "recipe_core")) == []
    _write(tmp_path, {"recipe_core/data/source.py": "def f():\n    import recipe_core.runs\n"})
    assert layer_breaks(import_graph(tmp_path / "recipe_core")) == [
        "recipe_core.data.source (layer 3) imports recipe_core.runs (layer 6)"
    ]


def environment_reads(name: str, path: Path) -> list[str]:
    """Where the module reads (or writes) the process environment or calls load_settings():
    `os.environ`, `os.getenv(...)`, `from os import environ`, `load_settings(...)`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        what = ""
        if isinstance(node, ast.Attribute) and node.attr in ENV_NAMES:
            if isinstance(node.value, ast.Name) and node.value.id in ("os", "posix"):
                what = f"{node.value.id}.{node.attr}"
        elif isinstance(node, ast.ImportFrom) and node.module in ("os", "posix"):
            what = ", ".join(f"from os import {a.name}" for a in node.names if a.name in ENV_NAMES)
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            what = "load_settings()" if called == "load_settings" else ""
        if what:
            found.append(f"{name}:{getattr(node, 'lineno', 0)} {what}")
    return found


def env_offenders(root: Path) -> list[str]:
    def is_edge(module: str) -> bool:
        relative = module.partition(".")[2]
        return any(relative == e or relative.startswith(e + ".") for e in ENV_EDGES)

    return sorted(
        hit
        for name, path in module_files(root).items()
        if not is_edge(name)
        for hit in environment_reads(name, path)
    )


def test_only_the_edges_read_the_environment() -> None:
    assert env_offenders(PACKAGE) == []


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("import os\nURL = os.environ.get('RECIPE_RUNS_URL', '')\n", "os.environ"),
        ("import os\ndef f():\n    return os.getenv('TORCH_HOME')\n", "os.getenv"),
        ("from os import environ\n", "from os import environ"),
        (
            "from recipe_core import settings\ndef f():\n    return settings.load_settings()\n",
            "load_settings()",
        ),
    ],
    ids=["os.environ", "os.getenv", "from-os-import", "load_settings"],
)
def test_a_planted_environment_read_is_found_and_the_clean_twin_passes(
    tmp_path: Path, text: str, what: str
) -> None:
    clean = {
        "recipe_core/__init__.py": "",
        "recipe_core/settings.py": "import os\ndef load_settings():\n    return dict(os.environ)\n",
        "recipe_core/cli/__init__.py": "from recipe_core.settings import load_settings\n"
        "SETTINGS = load_settings()\n",
        "recipe_core/runs/__init__.py": "",
        "recipe_core/runs/storage.py": "def open_store(url, environ):\n    return environ\n",
    }
    _write(tmp_path, clean)
    assert env_offenders(tmp_path / "recipe_core") == []  # the edges, and a mapping passed down
    _write(tmp_path, {"recipe_core/runs/storage.py": text})
    [hit] = env_offenders(tmp_path / "recipe_core")
    assert hit.startswith("recipe_core.runs.storage:") and hit.endswith(what)

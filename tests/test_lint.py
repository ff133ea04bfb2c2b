"""The one toolchain runs inside the test command: ruff lint, ruff format, mypy --strict."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize(
    "args",
    [
        ("ruff", "check", "."),
        ("ruff", "format", "--check", "."),
        ("mypy", "--strict", "recipe_core"),
    ],
    ids=["ruff-check", "ruff-format", "mypy-strict"],
)
def test_toolchain_clean(args: tuple[str, ...]) -> None:
    result = _run(*args)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_streamlit_is_a_banned_import_in_the_engine(tmp_path: object) -> None:
    """TID251 really fires: a planted `import streamlit` under recipe_core/ fails the lint."""
    probe = REPO_ROOT / "recipe_core" / "_lint_probe.py"
    probe.write_text("import streamlit  # noqa: F401\n")
    try:
        result = _run("ruff", "check", "--select", "TID251", str(probe))
    finally:
        probe.unlink()
    assert result.returncode != 0 and "TID251" in result.stdout


STATE_MODULES = {
    "access.py",
    "state.py",
    "data_state.py",
    "run_state.py",
    "check_state.py",
    "browse_state.py",
}


def test_only_the_state_modules_touch_session_state_and_caches() -> None:
    """Pages and renderers call app/*state.py and app/access.py; they never keep their own
    session keys or caches (which would leak one workspace's results into another's)."""
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{n}"
        for path in sorted((REPO_ROOT / "app").rglob("*.py"))
        if path.name not in STATE_MODULES or path.parent.name != "app"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if "st.session_state" in line or "st.cache_" in line
    ]
    assert not offenders, offenders
    assert {p.name for p in (REPO_ROOT / "app").glob("*.py")} >= STATE_MODULES


def test_mypy_sees_the_real_types_of_the_lazy_public_face(tmp_path: object) -> None:
    """`recipe_core.__getattr__` returns `object`; the TYPE_CHECKING imports must give type
    checkers and IDEs every lazy export's real type (a function is a callable, not `object`)."""
    import recipe_core

    probe = REPO_ROOT / ".mypy_probe_face.py"
    names = ("run_all", "start_run", "inspect_batch", "submit_run", "train", "read_dynamics")
    probe.write_text(
        "import recipe_core\n" + "".join(f"reveal_type(recipe_core.{n})\n" for n in names)
    )
    try:
        result = _run("mypy", "--strict", "--follow-imports=silent", str(probe.name))
    finally:
        probe.unlink()
    revealed = [line for line in result.stdout.splitlines() if "Revealed type" in line]
    assert len(revealed) == len(names), result.stdout[-3000:]
    for name, line in zip(names, revealed, strict=True):
        assert '"def (' in line, f"{name}: {line}"
    assert sorted(recipe_core.__all__) == sorted(set(recipe_core.__all__))
    lazy = set(recipe_core._LAZY)
    assert lazy <= set(recipe_core.__all__), lazy - set(recipe_core.__all__)

"""Pipeline specs, `FILE.py:NAME` or `package.module:NAME`, checked without importing them:
what the dashboard and `recipe.toml` handle (the Streamlit process never imports user code)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from recipe_core.errors import PipelineError

SPEC_HELP = (
    "Name a pipeline as FILE.py:NAME (a file path) or package.module:NAME (an importable "
    "module), where NAME is a zero-argument function returning recipe_core.Pipeline."
)
_MODULE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


def parse_spec(spec: str) -> tuple[str, str]:
    """('FILE.py' or 'package.module', 'NAME') of a spec, or a PipelineError saying why not."""
    target, sep, name = str(spec).strip().rpartition(":")
    if not sep or not target or not name.isidentifier():
        raise PipelineError(f"Pipeline spec {spec!r} is not FILE.py:NAME or module:NAME. "
                            + SPEC_HELP)  # fmt: skip
    if not target.endswith(".py") and not _MODULE.match(target):
        raise PipelineError(f"Pipeline spec {spec!r}: {target!r} is neither a .py file nor a "
                            f"dotted module name. {SPEC_HELP}")  # fmt: skip
    return target, name


def checked_pipelines(table: Mapping[str, object], *, folder: Path, where: str) -> dict[str, str]:
    """A `[pipelines]` table (name = "FILE.py:NAME" | "module:NAME") with its specs checked
    without importing anything: FILE.py paths made absolute (relative ones start at `folder`)
    and required to exist. `where` names the table in error messages."""
    out: dict[str, str] = {}
    for name, spec in table.items():
        if not isinstance(spec, str):
            raise PipelineError(f'{where} {name} = {spec!r} must be a string, e.g. {name} = '
                                '"my_project/recipe_pipeline.py:pipeline".')  # fmt: skip
        target, attr = parse_spec(spec)
        if target.endswith(".py"):
            path = Path(target).expanduser()
            path = (path if path.is_absolute() else folder / path).resolve()
            if not path.is_file():
                raise PipelineError(f"{where} {name} = {spec!r}: {path} does not exist. "
                                    "Fix the path (relative to the file's folder).")  # fmt: skip
            spec = f"{path}:{attr}"
        out[str(name)] = spec
    return out


def spec_label(spec: str) -> str:
    """A short name for a spec: 'char_lm:pipeline' for examples/char_lm.py:pipeline."""
    target, name = parse_spec(spec)
    return f"{Path(target).stem if target.endswith('.py') else target}:{name}"

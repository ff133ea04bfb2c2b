"""AppTest helpers shared by the page tests."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.conftest import REPO_ROOT

MAIN = str(REPO_ROOT / "app" / "main.py")


def open_page(at: AppTest, view: str) -> AppTest:
    """Switch to app/views/<view>.py and fail on any exception the page raised."""
    at.switch_page(f"views/{view}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def elements(at: AppTest) -> list[object]:
    """Every element of the rendered page, in document order."""
    found: list[object] = []
    stack: list[object] = [at._tree]
    while stack:
        node = stack.pop()
        found.append(node)
        children = getattr(node, "children", {})
        kids = list(children.values() if isinstance(children, dict) else children)
        stack.extend(reversed(kids))  # pop the first child next: document order
    return found


def image_captions(at: AppTest) -> list[str]:
    """Captions of every st.image on the page (grids, duplicate groups, neighbours)."""
    return [
        img.caption
        for node in elements(at)
        if getattr(node, "type", "") == "image"
        for img in node.proto.imgs  # type: ignore[attr-defined]
    ]

"""Every relative link and image in README.md and docs/*.md names a file or folder that exists
(a page moved to docs/ keeps its links working; the tour's screenshots are there)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def relative_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code blocks are not links
    links = [m.group(1).split("#")[0] for m in LINK.finditer(text)]
    return [link for link in links if link and not re.match(r"[a-z]+:", link)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    missing = [link for link in relative_links(page) if not (page.parent / link).exists()]
    assert not missing, f"{page.relative_to(REPO)} links to missing {missing}"


def test_the_readme_shows_a_screenshot_per_tour_step() -> None:
    images = [link for link in relative_links(REPO / "README.md") if link.endswith(".png")]
    assert len({i for i in images if i.startswith("docs/tour/")}) >= 10

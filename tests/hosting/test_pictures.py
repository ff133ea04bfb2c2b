"""Pictures on a team server never get a URL: Streamlit's /media/<hash> handler answers anyone
holding the URL, without a session or sign-in, so in team mode every image the pages show
(thumbnails, the sample's large view, nearest neighbours, batches) is inlined as a data: URI.
Driven through the real app/main.py with AppTest over a real scan; local mode is the control
(it keeps Streamlit's cached /media URLs)."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from recipe_core.workspace import open_workspace
from tests.app.helpers import MAIN, elements
from tests.conftest import REPO_ROOT, write_image_folder
from tests.hosting.hosting_helpers import base_sections, write_config

INLINE = "data:image/png;base64,"


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root holding a small image folder `ds`, scanned into the workspace `ws`."""
    from recipe_core.data import open_dataset
    from recipe_core.jobs.scan_job import RESULT_DIR, job_dir
    from recipe_core.scan import scan, write_result

    site = tmp_path_factory.mktemp("pictures")
    write_image_folder(site / "data" / "ds", classes=2, per_class=3, size=8)
    ws = open_workspace(site / "ws")
    root = open_dataset(site / "data" / "ds").root
    write_result(scan(root, workspace=ws, workers=0), job_dir(ws, root) / RESULT_DIR)
    return site


def image_urls(at: AppTest) -> list[str]:
    return [img.url for node in elements(at) if getattr(node, "type", "") == "image"
            for img in node.proto.imgs]  # type: ignore[attr-defined]  # fmt: skip


def urls_on_every_picture_page(at: AppTest) -> dict[str, list[str]]:
    """The image URLs of the overview, browse (grid, then a sample's details: large view and
    nearest neighbours) and What the net sees (the batch grid) pages, on the dataset the app
    opens first."""
    at.run()
    shown = {}
    for view in ("data_overview", "browse"):
        at.switch_page(f"views/{view}.py").run()
        shown[view] = image_urls(at)
    next(b for b in at.button if b.label == "Details").click().run()
    shown["details"] = image_urls(at)
    at.switch_page("views/net_sees.py").run()
    shown["net_sees"] = image_urls(at)
    assert not at.exception, [e.value for e in at.exception]
    return shown


def test_a_team_server_inlines_every_picture(
    scanned: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    roots = {"roots": [str(scanned / "data" / "ds")]}  # the first root: the dataset shown first
    monkeypatch.setenv("RECIPE_CONFIG", str(write_config(scanned, base_sections(data=roots))))
    shown = urls_on_every_picture_page(AppTest.from_file(MAIN, default_timeout=120))
    assert all(shown.values()), {page: len(urls) for page, urls in shown.items()}
    for page, urls in shown.items():
        assert not [u for u in urls if not u.startswith(INLINE)], f"{page} has a URL"
    picture = Image.open(io.BytesIO(base64.b64decode(shown["details"][0][len(INLINE) :])))
    assert picture.format == "PNG" and picture.size[0] > 0  # a real image, not a placeholder


def test_the_local_app_keeps_streamlits_media_urls(
    scanned: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: without a team config the same pages use /media URLs (fast, cached), so
    the team test above would have seen them."""
    monkeypatch.delenv("RECIPE_CONFIG", raising=False)
    monkeypatch.setenv("RECIPE_WORKSPACE", str(scanned / "ws"))
    monkeypatch.setenv("RECIPE_DATA_ROOTS", str(scanned / "data"))
    monkeypatch.setenv("RECIPE_DATASET", str(scanned / "data" / "ds"))
    shown = urls_on_every_picture_page(AppTest.from_file(MAIN, default_timeout=120))
    assert all(shown.values())
    assert all("/media/" in u for urls in shown.values() for u in urls)  # AppTest: /mock/media/


def test_every_picture_of_the_app_goes_through_pictures_image() -> None:
    """The runs, dynamics and pipeline pages need a finished job to show a picture; they are
    covered by this: no st.image call anywhere in app/ but the one in app/pictures.py."""
    calling = {str(path.relative_to(REPO_ROOT)) for path in (REPO_ROOT / "app").rglob("*.py")
               if re.search(r"\bst\.image\(", path.read_text())}  # fmt: skip
    assert calling == {"app/pictures.py"}

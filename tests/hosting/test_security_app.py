"""The hosted app's security, driven through the real app/main.py with AppTest and a real
recipe.toml: the sign-in gate, viewers (controls hidden, and refused server-side when the
state functions are reached anyway), path traversal, markup in names, oversize requests.
Every refusal must land in the workspace's audit log."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from app.widgets import md
from recipe_core.hosting import read_audit
from recipe_core.runs import RunWriter
from recipe_core.workspace import open_workspace
from tests.app.helpers import MAIN, elements, image_captions
from tests.conftest import write_image_folder
from tests.hosting.hosting_helpers import OIDC, base_sections, write_config

TRICKY = "<img src=x onerror=alert(1)><b>x<b> *em*"  # a class folder's name: shown as text
VIEWER_TEXT = "Viewers can watch runs; ask an operator for the runner role to start or cancel jobs."


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with a small image folder (one class named like a script tag), a secret
    file outside it, and a symlink inside it pointing out."""
    root = tmp_path_factory.mktemp("site")
    data = root / "data"
    write_image_folder(data / "ds", classes=2, per_class=3, size=8)
    for split in ("train", "val"):
        (data / "ds" / split / "class_0").rename(data / "ds" / split / TRICKY)
    (root / "secret").mkdir()
    write_image_folder(root / "secret" / "ds", classes=2, per_class=2, size=8)
    os.symlink(root / "secret" / "ds", data / "escape")
    return root


def configure(site: Path, name: str, **sections: dict[str, Any]) -> Path:
    folder = site / name
    folder.mkdir(exist_ok=True)
    defaults: dict[str, dict[str, Any]] = {
        "data": {"roots": [str(site / "data")]},
        "limits": {"max_steps": 500, "max_scan_images": 5, "max_concurrent_jobs": 1},
    }
    return write_config(folder, base_sections(**{**defaults, **sections}))


def app(
    config: Path, monkeypatch: pytest.MonkeyPatch, user: dict[str, Any] | None = None
) -> AppTest:
    monkeypatch.setenv("RECIPE_CONFIG", str(config))
    monkeypatch.delenv("RECIPE_WORKSPACE", raising=False)
    monkeypatch.delenv("RECIPE_DATASET", raising=False)
    at = AppTest.from_file(MAIN, default_timeout=60)
    if user is not None:
        at.user = user
    return at


def texts(at: AppTest) -> str:
    """Every text the page shows (markdown, alerts, captions, buttons), joined."""
    out = []
    for node in elements(at):
        for attr in ("value", "body", "label"):
            value = getattr(node, attr, None)
            if isinstance(value, str):
                out.append(value)
    return "\n".join(out)


def buttons(at: AppTest) -> list[str]:
    return [b.label for b in at.button]


def audit_rows(config: Path) -> list[tuple[str, str, str]]:
    return [(e.user, e.action, e.outcome) for e in read_audit(config.parent / "ws" / "audit.jsonl")]


# --- the sign-in gate ---------------------------------------------------------------------------


def test_signed_out_visitor_sees_only_the_sign_in_button(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = configure(site, "gate", auth=OIDC, access={"viewers": ["@example.com"]})
    at = app(config, monkeypatch, {"is_logged_in": False}).run()
    assert not at.exception
    assert buttons(at) == ["Sign in"]
    assert "Runs" not in texts(at) and not at.sidebar.button


def test_a_signed_in_stranger_is_refused_with_sign_out_only(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = configure(site, "stranger", auth=OIDC, access={"viewers": ["@example.com"]})
    at = app(config, monkeypatch, {"is_logged_in": True, "email": "eve@example.com.evil.org"})
    at.run()
    assert not at.exception
    assert buttons(at) == ["Sign out"]
    assert "is not on this dashboard's allow-list" in at.error[0].value
    assert audit_rows(config) == [("eve@example.com.evil.org", "sign_in_refused", "denied")]


def test_local_role_is_no_backdoor_when_sign_in_is_on(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[access] local_role = "runner" applies only without sign-in: a signed-in viewer stays
    a viewer, and a signed-out visitor sees the gate."""
    access = {"viewers": ["@example.com"], "local_role": "runner"}
    config = configure(site, "nobackdoor", auth=OIDC, access=access)
    at = app(config, monkeypatch, {"is_logged_in": True, "email": "bob@example.com"}).run()
    assert not at.exception
    assert "role: **viewer**" in texts(at)
    assert [b.label for b in at.sidebar.button] == ["Sign out"]
    at.switch_page("views/runs.py").run()
    assert VIEWER_TEXT in texts(at) and "Start run" not in buttons(at)
    assert ("bob@example.com", "sign_in", "ok") in audit_rows(config)


def test_the_unauthenticated_network_override_shows_a_red_banner(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AppTest binds nothing: host 0.0.0.0 here is only what the config says."""
    server = {"host": "0.0.0.0", "allow_unauthenticated_network": True}
    banner = app(configure(site, "open", server=server), monkeypatch).run().error
    assert "without sign-in" in banner[0].value
    quiet = app(configure(site, "loopback"), monkeypatch).run().error
    assert not any("without sign-in" in e.value for e in quiet)


# --- viewers: controls hidden, and refused server-side --------------------------------------


def queued_run(config: Path, owner: str | None = None) -> str:
    """An unfinished (queued) run in the config's workspace, optionally owned by `owner`."""
    ws = open_workspace(config.parent / "ws")
    writer = RunWriter.create(ws, name="waiting", config={"steps": 10})
    if owner is not None:
        (writer.run_dir / "owner.json").write_text(f'{{"user": "{owner}"}}')
    return writer.run_dir.name


@pytest.mark.parametrize("role", ["viewer", "runner"])
def test_viewers_see_no_start_cancel_scan_or_check_controls(
    site: Path, monkeypatch: pytest.MonkeyPatch, role: str
) -> None:
    """The runner control shows that each looked-for control exists on these pages."""
    config = configure(site, f"ui_{role}", access={"local_role": role})
    queued_run(config)
    at = app(config, monkeypatch).run()
    assert f"everyone acts as **{role}**" in texts(at)
    at.switch_page("views/data_overview.py").run()
    at.text_input(key="dataset_input").input(str(site / "data" / "ds")).run()
    shown: dict[str, list[str]] = {}
    for view in ("runs", "checks", "data_overview"):
        at.switch_page(f"views/{view}.py").run()
        assert not at.exception, [e.value for e in at.exception]
        shown[view] = buttons(at)
        if view == "runs":
            assert (VIEWER_TEXT in texts(at)) == (role == "viewer")
    runner = role == "runner"
    assert ("Start run" in shown["runs"]) == runner and ("Cancel" in shown["runs"]) == runner
    assert ("Run checks" in shown["checks"]) == runner
    assert ("Scan dataset" in shown["data_overview"]) == runner


@pytest.mark.parametrize("role", ["viewer", "runner"])
def test_viewers_see_no_curation_or_export_controls(
    site: Path, monkeypatch: pytest.MonkeyPatch, role: str
) -> None:
    """Issues page and Browse's detail panel on a scanned dataset: a viewer reads the findings
    and the decisions, but gets no drop, relabel or export control (the runner does)."""
    from recipe_core.data import open_dataset
    from recipe_core.jobs.scan_job import RESULT_DIR, job_dir
    from recipe_core.scan import scan, write_result

    config = configure(site, f"curate_{role}", access={"local_role": role})
    ws = open_workspace(config.parent / "ws")
    root = open_dataset(site / "data" / "ds").root
    write_result(scan(root, workspace=ws, workers=0), job_dir(ws, root) / RESULT_DIR)
    at = app(config, monkeypatch).run()
    at.switch_page("views/data_overview.py").run()
    at.text_input(key="dataset_input").input(str(site / "data" / "ds")).run()
    at.switch_page("views/issues.py").run()
    assert not at.exception, [e.value for e in at.exception]
    issues_page = buttons(at)
    viewer_note = "Viewers can read the decisions" in texts(at)
    at.switch_page("views/browse.py").run()
    next(b for b in at.button if b.label == "Details").click().run()  # the detail panel
    assert not at.exception, [e.value for e in at.exception]
    assert "**Nearest neighbours**" in texts(at), "the detail panel is not shown"
    detail = buttons(at)
    runner = role == "runner"
    assert ("Export cleaned manifest" in issues_page) == runner and viewer_note != runner
    assert ("Drop" in detail and "Relabel" in detail) == runner, detail
    if not runner:
        assert not {"Drop", "Undo drop", "Relabel", "Undo decision"} & set(issues_page + detail)


def call_every_mutating_state_function(dataset: str, run_id: str) -> None:
    """An AppTest script: call each state function a hidden control would call."""
    import streamlit as st

    from app import access, check_state, data_state, run_state, state
    from recipe_core import RecipeError
    from recipe_core.explore.curation import decision_log
    from recipe_core.train import make_config

    source = data_state.dataset_source(dataset)
    target = state.current_target()
    calls = {
        "submit_run": lambda: run_state.submit_run(
            make_config(dataset, preset="baseline", steps=5)
        ),
        "cancel_run": lambda: run_state.cancel_run(run_id),
        "start_scan": lambda: data_state.start_scan(target),
        "start_checks": lambda: check_state.start_checks(dataset, "mlp", seed=0, max_seconds=5),
        "decide": lambda: data_state.decide(target, sample_id=0, path="x.png", action="drop"),
        "export": lambda: data_state.export_curated(
            source, {}, fmt="csv", history=decision_log(access.workspace(), target)
        ),
    }
    for name, call in calls.items():
        try:
            call()
            st.write(f"{name}: done")
        except RecipeError as error:
            st.write(f"{name}: {type(error).__name__}")


def test_a_viewer_reaching_the_state_functions_is_refused_and_audited(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = configure(site, "direct", access={"local_role": "viewer"})
    run_id = queued_run(config)
    dataset = str(site / "data" / "ds")
    monkeypatch.setenv("RECIPE_DATASET", dataset)
    at = app(config, monkeypatch)
    script = AppTest.from_function(call_every_mutating_state_function, args=(dataset, run_id),
                                   default_timeout=60)  # fmt: skip
    script.run()
    assert not script.exception, [e.value for e in script.exception]
    assert [m.value for m in script.markdown] == [
        f"{name}: AccessDenied"
        for name in ("submit_run", "cancel_run", "start_scan", "start_checks", "decide", "export")
    ]
    denied = [(a, o) for u, a, o in audit_rows(config)]
    assert denied == [
        (action, "denied")
        for action in ("start_run", "cancel_run", "start_scan", "start_checks",
                       "curation_decision", "export_manifest")
    ]  # fmt: skip
    ws = config.parent / "ws"
    assert not (ws / "scans").exists() and not (ws / "curation").exists()
    assert [p.name for p in (ws / "runs").iterdir()] == [run_id]  # nothing started
    del at


# --- paths: traversal, absolute escapes, symlinks, URL-encoding, NUL, 10 MB -------------------


def open_each_path(paths: list[str]) -> None:
    """An AppTest script: resolve each typed path the way the pages do."""
    import streamlit as st

    from app import data_state
    from recipe_core import RecipeError

    for typed in paths:
        try:
            st.write(f"opened {data_state.dataset_source(typed).root}")
        except RecipeError as error:
            st.write(f"refused: {type(error).__name__}")


def test_path_escapes_are_refused_and_audited(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = configure(site, "paths")
    attempts = [
        "../secret/ds",  # relative paths start at the first root
        "ds/../../secret/ds",
        str(site / "secret" / "ds"),  # absolute, outside the roots
        "/etc",
        str(site / "data" / "escape"),  # a symlink inside the root pointing out
        "escape",
        ".",  # the root itself holds the escaping link: listing it would follow the link
        "..%2Fsecret%2Fds",  # URL-encoded traversal: decoded, then refused
        "%2e%2e/secret/ds",
        "ds%252F..%252F..%252Fsecret",  # double-encoded
        "ds\x00",  # NUL byte
        str(Path(__file__).resolve().parents[2] / "sample_data" / "digits"),  # not a root here
    ]
    app(config, monkeypatch)
    script = AppTest.from_function(open_each_path, args=(["ds", *attempts],), default_timeout=60)
    script.run()
    assert not script.exception, [e.value for e in script.exception]
    shown = [m.value for m in script.markdown]
    assert shown[0] == f"opened {site.resolve() / 'data' / 'ds'}"  # the control opens
    assert shown[1:] == ["refused: DatasetError"] * len(attempts)
    refused = [e for e in read_audit(config.parent / "ws" / "audit.jsonl")]
    assert [e.action for e in refused] == ["path_refused"] * len(attempts)
    expected = [a.strip() for a in attempts]
    expected[expected.index(".")] = str(site.resolve() / "data")  # refused after resolving
    assert [e.target for e in refused] == expected
    assert all((e.outcome == "denied" and "outside" in e.detail) or "Invalid" in e.detail
               for e in refused)  # fmt: skip


def test_a_10_mb_path_typed_into_the_page_is_refused_unread(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = configure(site, "huge")
    at = app(config, monkeypatch).run()
    at.switch_page("views/data_overview.py").run()
    at.text_input(key="dataset_input").input("a/" * 5_000_000).run()
    assert not at.exception
    assert "over 4096 characters" in at.error[0].value
    entry = read_audit(config.parent / "ws" / "audit.jsonl")[-1]
    assert entry.action == "path_refused" and len(entry.target) < 1000
    assert (config.parent / "ws" / "audit.jsonl").stat().st_size < 5000


# --- markup in names ------------------------------------------------------------------------


def test_markup_in_class_and_file_names_is_shown_as_text(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = configure(site, "markup")
    at = app(config, monkeypatch).run()
    at.switch_page("views/data_overview.py").run()
    at.text_input(key="dataset_input").input(str(site / "data" / "ds")).run()
    assert not at.exception
    page = texts(at)
    charts = "".join(json.dumps(json.loads(c.proto.spec)) for c in at.get("plotly_chart"))
    assert "&lt;img src=x onerror=alert(1)&gt;" in charts  # plotly: HTML-escaped
    assert "<img" not in charts
    captions = image_captions(at)
    assert any(md(TRICKY) in c for c in captions)  # the name is shown, Markdown-escaped
    for text in [page, *captions]:
        assert "<img" not in text.replace("\\<img", "")  # and never as a raw tag


# --- oversize requests and per-user limits ---------------------------------------------------


def oversize_requests(dataset: str) -> None:
    """An AppTest script: a runner's requests over each limit, then a run within them."""
    import streamlit as st

    from app import access, data_state, run_state
    from recipe_core import RecipeError
    from recipe_core.train import make_config

    def small(steps: int) -> object:
        return make_config(dataset, preset="baseline", steps=steps, model="linear",
                           image_size=8, device="cpu")  # fmt: skip

    calls = {
        "name": lambda: run_state.submit_run(small(5), name="n" * 10_000_000),
        "steps": lambda: run_state.submit_run(small(501)),
        "scan": lambda: data_state.start_scan(access.path_policy().resolve(dataset)),
        "concurrent": lambda: run_state.submit_run(small(5)),
    }
    for name, call in calls.items():
        try:
            call()
            st.write(f"{name}: done")
        except RecipeError as error:
            st.write(f"{name}: {type(error).__name__}: {error}")


def test_requests_over_the_limits_are_refused_and_audited(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = configure(site, "limits")
    queued_run(config, owner="local")  # the user's one allowed unfinished run
    app(config, monkeypatch)
    dataset = str(site / "data" / "ds")
    script = AppTest.from_function(oversize_requests, args=(dataset,), default_timeout=60)
    script.run()
    assert not script.exception, [e.value for e in script.exception]
    shown = [m.value for m in script.markdown]
    assert shown[0].startswith("name: LimitExceeded: The run name is 10,000,000 characters")
    assert shown[1].startswith("steps: LimitExceeded: 501 steps is over this dashboard's limit")
    assert shown[2].startswith("scan: LimitExceeded: This dataset has 12 images, over")
    assert shown[3].startswith("concurrent: LimitExceeded: You already have 1 running job(s)")
    rows = audit_rows(config)
    assert rows == [("local", "limit_refused", "denied")] * 4
    assert not (config.parent / "ws" / "scans").exists()
    assert (config.parent / "ws" / "audit.jsonl").stat().st_size < 10_000


def test_the_steps_box_is_capped_and_the_scan_button_explains_the_limit(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = configure(site, "caps")
    monkeypatch.setenv("RECIPE_DATASET", str(site / "data" / "ds"))
    at = app(config, monkeypatch).run()
    at.switch_page("views/runs.py").run()
    assert at.number_input(key="run_steps_baseline").proto.max == 500
    at.switch_page("views/data_overview.py").run()
    at.text_input(key="dataset_input").input(str(site / "data" / "ds")).run()
    at.button(key="scan_start").click().run()
    assert not at.exception
    assert md("over this dashboard's scan limit of 5") in at.error[0].value
    assert audit_rows(config)[-1] == ("local", "limit_refused", "denied")


def start_and_cancel(dataset: str) -> None:
    """An AppTest script: a runner starts a run within the limits and cancels it."""
    import streamlit as st

    from app import run_state
    from recipe_core.train import make_config

    config = make_config(dataset, preset="baseline", steps=400, model="linear", image_size=8,
                         device="cpu")  # fmt: skip
    handle = run_state.submit_run(config, name="within limits")
    st.write(f"started {handle.run_id}")
    st.write(f"{run_state.cancel_run(handle.run_id).state}")


def test_a_runner_within_the_limits_starts_and_cancels_and_both_are_audited(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = configure(site, "allowed")
    app(config, monkeypatch)
    script = AppTest.from_function(
        start_and_cancel, args=(str(site / "data" / "ds"),), default_timeout=90
    ).run()
    assert not script.exception, [e.value for e in script.exception]
    run_id = script.markdown[0].value.removeprefix("started ")
    assert script.markdown[1].value == "cancelled"
    owner = json.loads((config.parent / "ws" / "runs" / run_id / "owner.json").read_text())
    assert owner == {"user": "local"}
    assert audit_rows(config) == [("local", "start_run", "ok"), ("local", "cancel_run", "ok")]


# --- one job budget over runs, check jobs, scans and captures; the check-time cap -------------


def over_the_job_budget(dataset: str) -> None:
    """An AppTest script: every kind of job start, by a runner whose one slot is taken."""
    import streamlit as st

    from app import access, check_state, data_state, run_state
    from recipe_core import RecipeError
    from recipe_core.train import make_config

    config = make_config(dataset, preset="baseline", steps=5, model="linear", image_size=8,
                         device="cpu")  # fmt: skip
    calls = {
        "run": lambda: run_state.submit_run(config),
        "checks": lambda: check_state.start_checks(dataset, "mlp", seed=0, max_seconds=5),
        "scan": lambda: data_state.start_scan(access.path_policy().resolve(dataset)),
        "see": lambda: check_state.start_see("pipeline.py:pipeline", batches=1),
    }
    for name, call in calls.items():
        try:
            call()
            st.write(f"{name}: done")
        except RecipeError as error:
            st.write(f"{name}: {type(error).__name__}: {error}")


def test_a_running_check_job_uses_the_one_job_slot_for_every_kind(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recipe_core.jobs.check_job import new_check_job

    limits = {"max_concurrent_jobs": 1, "max_scan_images": 100, "max_steps": 500}
    config = configure(site, "budget", limits=limits)
    ws = open_workspace(config.parent / "ws")
    busy = new_check_job("ds", "mlp", workspace=ws, owner="local")  # its worker is "running"
    new_check_job("ds", "mlp", workspace=ws, owner="someone@else.org")  # not this user's
    app(config, monkeypatch)
    dataset = str(site / "data" / "ds")
    script = AppTest.from_function(over_the_job_budget, args=(dataset,), default_timeout=60)
    script.run()
    assert not script.exception, [e.value for e in script.exception]
    expected = f"LimitExceeded: You already have 1 running job(s) (check job {busy.name})"
    for line, kind in zip(script.markdown, ("run", "checks", "scan", "see"), strict=True):
        assert line.value.startswith(f"{kind}: {expected}"), line.value
    assert audit_rows(config) == [("local", "limit_refused", "denied")] * 4
    assert len(list((ws.root / "checks").iterdir())) == 2  # nothing new started
    started = ("scans/**/progress.json", "runs/*/status.json", "seen/*/job.json")
    assert not [path for pattern in started for path in ws.root.glob(pattern)]


def check_time_budgets(dataset: str) -> None:
    """An AppTest script: check jobs asked for over, without, at 0 and within the time cap."""
    import streamlit as st

    from app import check_state
    from recipe_core import RecipeError

    for budget in (31, None, 0, 5):
        try:
            job_id = check_state.start_checks(dataset, "mlp", seed=0, max_seconds=budget)
            st.write(f"{budget}: started {job_id}")
            st.write(f"{check_state.cancel_checks(job_id).state}")
        except RecipeError as error:
            st.write(f"{budget}: {type(error).__name__}: {error}")


def test_the_check_time_cap_is_enforced_on_the_job_and_on_the_form(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recipe_core.jobs.check_job import read_job
    from recipe_core.jobs.owners import job_owner

    limits = {"max_concurrent_jobs": 1, "max_check_seconds": 30}
    config = configure(site, "checktime", limits=limits)
    at = app(config, monkeypatch)
    dataset = str(site / "data" / "ds")
    script = AppTest.from_function(check_time_budgets, args=(dataset,), default_timeout=90)
    script.run()
    assert not script.exception, [e.value for e in script.exception]
    shown = [m.value for m in script.markdown]
    assert shown[0].startswith("31: LimitExceeded: A time budget of 31 s is over")
    assert shown[1].startswith("None: LimitExceeded: No time budget was given")
    assert shown[2].startswith("0: ConfigError: max_seconds=0") and "unlimited" in shown[2]
    assert shown[3].startswith("5: started ") and shown[4] == "cancelled"
    job = read_job(config.parent / "ws" / "checks" / shown[3].removeprefix("5: started "))
    assert (job.max_seconds, job.timeout_s) == (5.0, 30.0)  # the worker's own deadline: the cap
    assert job_owner(job.folder) == "local"
    at.run().switch_page("views/checks.py").run()
    assert at.number_input(key="ck_budget").proto.max == 30  # the form offers no more
    assert at.number_input(key="ck_budget").proto.min == 1  # and no "0: none"

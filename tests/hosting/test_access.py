"""The allow-list match, roles, the server-side check with its audit entries, the audit log
under concurrent appenders, per-user limits and operator plugins."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from recipe_core.errors import ConfigError, RunError
from recipe_core.hosting import AccessDenied, AuditLog, User, identify, read_audit, role_for
from recipe_core.hosting import audit as audit_module
from recipe_core.hosting.access import RUNNER_ACTIONS, allowed, require
from recipe_core.hosting.config import AccessConfig, LimitsConfig, check_entry, load_config
from recipe_core.hosting.guard import Guard, checked_run_id
from recipe_core.hosting.limits import LimitExceeded, record_owner
from recipe_core.jobs.active import ActiveJob, active_jobs
from recipe_core.runs import RunWriter, list_runs
from recipe_core.workspace import open_workspace
from tests.hosting.hosting_helpers import OIDC, base_sections, write_config

ACCESS = AccessConfig(runners=("alice@example.com", "@ops.example.org"), viewers=("@example.com",))


@pytest.mark.parametrize(
    ("email", "role"),
    [
        ("alice@example.com", "runner"),
        ("  ALICE@Example.COM ", "runner"),  # case and blanks do not matter
        ("bob@example.com", "viewer"),  # by domain
        ("carol@ops.example.org", "runner"),  # a runner domain
        ("eve@notexample.com", None),  # suffix of the domain is not the domain
        ("eve@example.com.evil.org", None),  # the domain as a prefix is not the domain
        ("eve@sub.example.com", None),  # subdomains need their own entry
        ("alice@example.com@evil.org", None),  # the domain is the part after the last @
        ("alice@example.comx", None),
        ("@example.com", None),  # an entry is not an address
        ("example.com", None),
        ("", None),
        ("alice", None),
    ],
)
def test_role_for_matches_whole_addresses_and_domains_only(email: str, role: str | None) -> None:
    assert role_for(email, ACCESS) == role


def test_runner_entry_beats_viewer_domain_and_roles_allow_what_they_should() -> None:
    both = AccessConfig(runners=("alice@example.com",), viewers=("@example.com",))
    assert role_for("alice@example.com", both) == "runner"
    for action in RUNNER_ACTIONS:
        assert allowed("runner", action) and not allowed("viewer", action)
        assert not allowed(None, action)
    assert allowed("viewer", "browse") and not allowed(None, "browse")


@pytest.mark.parametrize("entry", ["*@example.com", "example.com", "a b@x.org", "@", "@-x.org",
                                   "alice@", "@exa_mple.com"])  # fmt: skip
def test_check_entry_refuses_what_is_neither_an_address_nor_a_domain(entry: str) -> None:
    with pytest.raises(ConfigError, match="neither an e-mail nor a domain"):
        check_entry(entry, "viewers")


def test_identify_local_role_applies_only_without_sign_in(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    none = load_config(write_config(tmp_path, base_sections(access={"local_role": "viewer"})))
    oidc_sections = base_sections(
        auth=OIDC, access={"local_role": "runner", "viewers": ["@example.com"]}
    )
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "data").mkdir()
    oidc = load_config(write_config(tmp_path / "o", oidc_sections))
    assert identify(None, {}) == User("local", "runner")
    assert identify(none, {}) == User("local", "viewer")
    # sign-in on: local_role is no backdoor; the claims decide
    assert identify(oidc, {}) == User("", None)
    assert identify(oidc, {"is_logged_in": False, "email": "bob@example.com"}) == User("", None)
    assert identify(oidc, {"is_logged_in": True, "email": "Bob@Example.com"}) == User(
        "bob@example.com", "viewer"
    )
    assert identify(oidc, {"is_logged_in": True, "email": "eve@evil.org"}).role is None
    unverified = {"is_logged_in": True, "email": "bob@example.com", "email_verified": False}
    assert identify(oidc, unverified).role is None


def test_require_refuses_a_viewer_and_audits_denied(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    viewer = User("bob@example.com", "viewer")
    with pytest.raises(AccessDenied, match=r"bob@example.com has the viewer role.*runner role"):
        require(viewer, "start_run", target="ds", audit=audit)
    require(User("alice@example.com", "runner"), "start_run", target="ds", audit=audit)
    (entry,) = read_audit(audit.path)
    assert (entry.user, entry.role, entry.action, entry.target, entry.outcome) == (
        "bob@example.com", "viewer", "start_run", "ds", "denied"
    )  # fmt: skip
    assert set(json.loads(audit.path.read_text())) == {
        "time", "user", "role", "action", "target", "outcome", "detail"
    }  # fmt: skip


def test_guard_records_ok_error_and_limit_refusals_once(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    guard = Guard(User("alice@example.com", "runner"), audit, LimitsConfig(max_steps=100))
    with guard.acting("cancel_run", "r1"):
        pass
    with pytest.raises(RunError), guard.acting("cancel_run", "r2"):
        raise RunError("no such run")
    over = pytest.raises(LimitExceeded, match=r"101 steps is over .* limit of 100")
    with over, guard.acting("start_run", "ds"):
        guard.check_run(steps=101, name=None, running=list)
    with pytest.raises(LimitExceeded, match="at most 1,000 are accepted"):
        guard.check_run(steps=1, name="x" * 10_000_000, running=list)
    rows = [(e.action, e.target, e.outcome) for e in read_audit(audit.path)]
    assert rows == [
        ("cancel_run", "r1", "ok"),
        ("cancel_run", "r2", "error"),
        ("limit_refused", "steps=101", "denied"),
        ("limit_refused", "run name: 10,000,000 characters", "denied"),
    ]
    assert audit.path.stat().st_size < 10_000  # a 10 MB field is clipped, not logged


def test_concurrent_job_limit_counts_the_users_unfinished_runs(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws")
    alice, bob = User("alice@example.com", "runner"), User("bob@example.com", "runner")
    for owner in (alice, alice, bob):
        record_owner(RunWriter.create(ws, name="queued", config={}).run_dir, owner)
    done = RunWriter.create(ws, name="done", config={})
    done.finish("succeeded")
    record_owner(done.run_dir, bob)

    def running() -> list[ActiveJob]:
        return active_jobs(ws, list_runs(ws))

    audit = AuditLog(tmp_path / "audit.jsonl")
    limits = LimitsConfig(max_concurrent_jobs=2)
    with pytest.raises(LimitExceeded, match=r"already have 2 running job\(s\) \(training run"):
        Guard(alice, audit, limits).check_run(steps=1, name=None, running=running)
    Guard(bob, audit, limits).check_run(steps=1, name=None, running=running)
    assert [e.user for e in read_audit(audit.path)] == ["alice@example.com"]


def test_run_ids_from_the_browser_are_single_folder_names() -> None:
    assert checked_run_id("20260101-120000-abc123") == "20260101-120000-abc123"
    for bad in ("../x", "..", "a/b", "/etc", "", "x\x00", "%2e%2e"):
        with pytest.raises(RunError, match="Invalid run id"):
            checked_run_id(bad)


APPENDER = """
import importlib.util, pathlib, sys
# audit.py imports only the standard library: load it alone (the package imports pandas)
spec = importlib.util.spec_from_file_location("audit", sys.argv[3])
audit = importlib.util.module_from_spec(spec)
sys.modules["audit"] = audit
spec.loader.exec_module(audit)
log = audit.AuditLog(pathlib.Path(sys.argv[1]))
for i in range(200):
    log.record(f"p{sys.argv[2]}@x.org", "runner", "start_run", target=str(i), detail="d" * 300)
"""


def test_audit_lines_never_interleave_across_processes_and_threads(tmp_path: Path) -> None:
    file = tmp_path / "audit.jsonl"
    module = audit_module.__file__
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, str(file), str(n), module])
             for n in range(3)]  # fmt: skip
    log = AuditLog(file)

    def append(n: int) -> None:
        for i in range(200):
            log.record(f"t{n}@x.org", "viewer", "path_refused", target=f"{i}\n{{forged}}")

    threads = [threading.Thread(target=append, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(p.wait(timeout=60) == 0 for p in procs)
    lines = file.read_text().splitlines()
    assert len(lines) == 1200  # a newline in a value cannot forge an extra entry
    entries = [json.loads(line) for line in lines]  # every line is one whole object
    for who in [f"p{n}@x.org" for n in range(3)] + [f"t{n}@x.org" for n in range(3)]:
        assert sorted(int(e["target"].split("\n")[0]) for e in entries if e["user"] == who) == list(
            range(200)
        )

"""Who is asking and where they may look: the `recipe serve` config, the workspace, the
allowed dataset roots, the signed-in user and the guard every mutating action goes through
(role check, limits, audit log). Everything the state modules cache is keyed under the
workspace this returns."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from typing import TYPE_CHECKING

import streamlit as st

from recipe_core import Workspace, open_workspace
from recipe_core.data.safe_paths import PathPolicy, default_policy
from recipe_core.data.specs import parse_spec
from recipe_core.errors import PipelineError
from recipe_core.hosting import AuditLog, ServeConfig, User, identify, load_config
from recipe_core.hosting.guard import Guard
from recipe_core.settings import Settings, load_settings

if TYPE_CHECKING:
    pass


AUDIT_FILE = "audit.jsonl"


REFUSED_KEY = "_last_refused_path"  # audit a refused path once, not on every rerun


SIGNED_IN_KEY = "_audited_sign_in"


def settings() -> Settings:
    """This server's settings, from its environment (`recipe app` / `recipe serve` set it): the
    app's one read of the environment, on each rerun, passed down to what needs it."""
    return load_settings()


def workspace() -> Workspace:
    config = serve_config()
    if config is not None:
        return _workspace(str(config.workspace.path), settings())
    current = settings()
    return _workspace(current.workspace, current)


@st.cache_resource(show_spinner=False, max_entries=4)
def _workspace(path: str, _settings: Settings) -> Workspace:
    """Cached per path (`_settings`, the runs URL's source, is not part of the key)."""
    return open_workspace(path or None, settings=_settings)


def path_policy() -> PathPolicy:
    """Folders typed paths may reach (see safe_paths). Locally: cwd, sample_data/,
    --data-root ..., and any other existing path the user types (their own disk: no restart
    needed). In serve mode only the configured roots, plus the workspace's named (cleaned)
    datasets, whose original files must lie in those roots too. Each refusal is audited."""
    config = serve_config()
    if config is not None:
        roots = (*config.roots, workspace().datasets)
        return PathPolicy.from_roots(roots, on_refuse=_path_refused)
    return replace(default_policy(settings=settings()), on_refuse=_path_refused)


def _path_refused(typed: str, message: str) -> None:
    """Audit a refused path once per session and path (every rerun re-resolves it)."""
    if st.session_state.get(REFUSED_KEY) != typed:
        st.session_state[REFUSED_KEY] = typed
        guard().path_refused(typed, message)


def serve_config() -> ServeConfig | None:
    """The `recipe serve` config ($RECIPE_CONFIG), or None in the local `recipe app`."""
    path = settings().config
    return _serve_config(path) if path else None


@st.cache_resource(show_spinner=False, max_entries=2)
def _serve_config(path: str) -> ServeConfig:
    config = load_config(path)
    if config.plugins is not None:  # already loaded when $RECIPE_PLUGINS was set: a no-op
        from recipe_core.train.models import load_plugin_folder

        load_plugin_folder(config.plugins)
    return config


def current_user() -> User:
    """The local runner; in serve mode without sign-in everyone gets [access] local_role; with
    sign-in the OIDC user (role None when not on the allow-list, e-mail "" when signed out).
    local_role never applies when sign-in is on."""
    return identify(serve_config(), st.user if _auth_on() else {})


def _auth_on() -> bool:
    config = serve_config()
    return config is not None and config.auth_on


def can(action: str) -> bool:
    """Whether the current user's role allows `action` (to hide controls; the state functions
    re-check)."""
    return current_user().can(action)


def guard() -> Guard:
    config = serve_config()
    audit = AuditLog(workspace().root / AUDIT_FILE)
    return Guard(current_user(), audit, None if config is None else config.limits)


def note_sign_in(user: User) -> None:
    """Audit a sign-in (or its refusal) once per browser session."""
    if st.session_state.get(SIGNED_IN_KEY) == user.email:
        return
    st.session_state[SIGNED_IN_KEY] = user.email
    g = guard()
    if user.role is None:
        g.audit.record(user.email, "", "sign_in_refused", outcome="denied",
                       detail="not on the allow-list")  # fmt: skip
    else:
        g.audit.record(user.email, user.role, "sign_in")


def max_steps() -> int | None:
    config = serve_config()
    return None if config is None else config.limits.max_steps


def max_check_seconds() -> int | None:
    """[limits] max_check_seconds of the team server; None in the local app."""
    config = serve_config()
    return None if config is None else config.limits.max_check_seconds


@st.cache_resource(show_spinner=False)
def job_start_lock() -> threading.Lock:
    """One job start (run, check job, scan, capture) at a time per server, so two tabs cannot
    both pass the per-user job budget."""
    return threading.Lock()


def unauthenticated_network() -> bool:
    """Served beyond loopback with nobody signing in (the operator's override is on)."""
    config = serve_config()
    if config is None:
        return settings().unauthenticated_network
    return config.unauthenticated_network


def pipelines() -> dict[str, str]:
    """{name: spec} of the pipelines this dashboard offers: in team mode only those the
    operator registered in recipe.toml's [pipelines]; locally those `recipe app --pipeline`
    and the project's recipe.toml named. Specs only: user code is imported in job processes."""
    config = serve_config()
    if config is not None:
        return dict(config.pipelines)
    return _local_pipelines(settings().pipelines)


@st.cache_resource(show_spinner=False, max_entries=4)
def _local_pipelines(env_value: str) -> dict[str, str]:
    try:
        offered = json.loads(env_value) if env_value else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in offered.items()} if isinstance(offered, dict) else {}


def may_type_pipelines() -> bool:
    """Only the local dashboard lets a user name a pipeline file; a team server offers only the
    operator's (the browser never names code to import)."""
    return serve_config() is None


def typed_pipeline(spec: str) -> str:
    """A pipeline spec typed in the local dashboard, checked without importing it: a FILE.py
    must lie inside the allowed roots (the same rule as dataset paths). The absolute spec."""
    if not may_type_pipelines():
        raise PipelineError("This team dashboard runs only the pipelines its operator "
                            "registered; choose one of those.")  # fmt: skip
    target, name = parse_spec(spec)
    if not target.endswith(".py"):
        return f"{target}:{name}"
    strict = replace(path_policy(), open_existing=False)  # code: only from the allowed folders
    path = strict.resolve(target)
    if not path.is_file():
        raise PipelineError(f"Pipeline file {target} does not exist inside the allowed folders.")
    return f"{path}:{name}"

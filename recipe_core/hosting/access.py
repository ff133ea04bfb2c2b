"""Who may do what: the allow-list match (e-mail or domain -> role) and the server-side
check every mutating action passes through.

Matching is exact and case-insensitive on the whole address or the whole domain: the entry
"@example.com" admits "bob@example.com" only, never "eve@notexample.com",
"eve@example.com.evil.org" or "eve@sub.example.com" (list a subdomain to admit it). Runners
are viewers too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from recipe_core.errors import RecipeError
from recipe_core.hosting.audit import AuditLog
from recipe_core.hosting.config import DOMAIN, AccessConfig, ServeConfig

RUNNER_ACTIONS = ("start_run", "cancel_run", "start_scan", "start_checks", "export_manifest",
                  "curation_decision")  # fmt: skip


class AccessDenied(RecipeError):
    """A signed-in user's role does not allow the action (the UI hides it; this is the
    server-side re-check)."""


@dataclass(frozen=True)
class User:
    email: str  # lower-case address, or "local" when nobody signs in
    role: str | None  # "runner", "viewer", or None: not on the allow-list

    def can(self, action: str) -> bool:
        return allowed(self.role, action)


def allowed(role: str | None, action: str) -> bool:
    if role == "runner":
        return True
    return role == "viewer" and action not in RUNNER_ACTIONS


def role_for(email: str, access: AccessConfig) -> str | None:
    """'runner', 'viewer' or None for a signed-in address (runners are viewers too)."""
    address = email.strip().lower()
    local, at, domain = address.rpartition("@")
    if not local or at != "@" or DOMAIN.fullmatch(domain) is None:
        return None
    for role, entries in (("runner", access.runners), ("viewer", access.viewers)):
        if address in entries or f"@{domain}" in entries:
            return role
    return None


def identify(config: ServeConfig | None, claims: Mapping[str, object]) -> User:
    """Who is asking. No config (`recipe app`): the local runner. Serve mode without sign-in:
    "local" with [access] local_role. With sign-in: the OIDC claims (st.user) decide, and
    local_role never applies: e-mail "" while signed out, role None when the address is not
    on the allow-list or the provider says it is unverified."""
    if config is None:
        return User("local", "runner")
    if not config.auth_on:
        return User("local", config.access.local_role)
    email = str(claims.get("email") or "").strip().lower()
    if not claims.get("is_logged_in") or not email:
        return User("", None)
    if claims.get("email_verified") is False:  # an unverified address proves nothing
        return User(email, None)
    return User(email, role_for(email, config.access))


def require(user: User, action: str, *, target: str, audit: AuditLog) -> None:
    """Return if `user` may do `action`; else log a "denied" entry and raise AccessDenied."""
    if user.can(action):
        return
    role = user.role or "none"
    message = (
        f"{user.email} has the {role} role, which may not {action.replace('_', ' ')} "
        f"({target}). Viewers browse data and watch runs; ask an operator for the runner role."
    )
    audit.record(user.email, user.role or "", action, target=target, outcome="denied",
                 detail=message)  # fmt: skip
    raise AccessDenied(message)

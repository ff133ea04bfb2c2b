"""Hosting a dashboard for a team: the `recipe.toml` config, roles and the allow-list, the
audit log, per-user limits and operator plugins. `recipe serve` and the app's state module
use these; nothing here imports streamlit or torch."""

from __future__ import annotations

from recipe_core.hosting.access import AccessDenied, User, allowed, identify, require, role_for
from recipe_core.hosting.audit import AuditEntry, AuditLog, read_audit
from recipe_core.hosting.config import ServeConfig, is_loopback, load_config

__all__ = [
    "AccessDenied",
    "AuditEntry",
    "AuditLog",
    "ServeConfig",
    "User",
    "allowed",
    "identify",
    "is_loopback",
    "load_config",
    "read_audit",
    "require",
    "role_for",
]

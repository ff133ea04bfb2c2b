"""The sign-in gate and the sidebar's identity, drawn by main.py before the navigation.

With sign-in on (`recipe serve` with [auth] provider = "oidc"): a signed-out visitor sees only
a "Sign in" button; a signed-in address that is not on the allow-list sees that, and a
"Sign out" button, and nothing else. Allowed users see the app, with their e-mail, their role
and "Sign out" in the sidebar. Without sign-in the sidebar says who everyone acts as.
"""

from __future__ import annotations

import streamlit as st

from app import access
from app.widgets import md
from recipe_core.hosting import User

NOT_ALLOWED = "is not on this dashboard's allow-list"
UNAUTHENTICATED = (
    "This dashboard is served on the network **without sign-in** (the operator's override is "
    "on): everyone who can reach it can start and cancel jobs."
)


def signed_in_user() -> User:
    """The user the app runs as; calls st.stop() for anyone who may not see the app."""
    user = access.current_user()
    config = access.serve_config()
    if config is not None and config.auth_on:
        if not user.email:
            _sign_in_page()
        access.note_sign_in(user)
        if user.role is None:
            _refused_page(user)
    _sidebar(user)
    if access.unauthenticated_network():
        st.error(UNAUTHENTICATED, icon="🔓")
    return user


def _sign_in_page() -> None:
    st.title("🧪 Recipe")
    st.write("This team dashboard needs you to sign in.")
    st.button("Sign in", type="primary", on_click=st.login)
    st.stop()


def _refused_page(user: User) -> None:
    st.title("🧪 Recipe")
    st.error(
        f"{md(user.email)} {NOT_ALLOWED}. Ask the operator to add your address (or your "
        "domain), or sign out and use another account.",
        icon="🚫",
    )
    st.button("Sign out", on_click=st.logout)
    st.stop()


def _sidebar(user: User) -> None:
    config = access.serve_config()
    with st.sidebar:
        if config is not None and config.auth_on:
            st.caption(f"Signed in as **{md(user.email)}** · role: **{user.role}**")
            st.button("Sign out", on_click=st.logout, key="sign_out")
        elif config is not None:
            st.caption(f"No sign-in: everyone acts as **{user.role}**")

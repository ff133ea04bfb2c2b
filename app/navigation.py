"""The page list: one entry per working view in app/views/ (never a folder named pages/)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

VIEWS = Path(__file__).resolve().parent / "views"


def pages() -> list[st.Page]:
    return [
        st.Page(VIEWS / "home.py", title="Home", icon="🏠", default=True),
        st.Page(VIEWS / "data_overview.py", title="Data overview", icon="🗂️", url_path="data"),
        st.Page(VIEWS / "browse.py", title="Browse samples", icon="🔎", url_path="browse"),
        st.Page(
            VIEWS / "distributions.py", title="Distributions", icon="📊", url_path="distributions"
        ),
        st.Page(VIEWS / "issues.py", title="Issues", icon="🧹", url_path="issues"),
        st.Page(VIEWS / "net_sees.py", title="What the net sees", icon="👁️", url_path="net"),
        st.Page(VIEWS / "checks.py", title="Checks", icon="✅", url_path="checks"),
        st.Page(VIEWS / "runs.py", title="Runs", icon="🏃", url_path="runs"),
        st.Page(VIEWS / "ensembles.py", title="Ensembles", icon="🎻", url_path="ensembles"),
        st.Page(VIEWS / "dynamics.py", title="Prediction dynamics", icon="🎞️", url_path="dynamics"),
    ]

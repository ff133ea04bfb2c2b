"""Entry point: `python -m streamlit run app/main.py` (or `recipe app`, `recipe serve`).
The sign-in gate, then the navigation."""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts app/ on sys.path, not the repo root; the views import `app.*`.
ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import streamlit as st  # noqa: E402

import app.palette  # noqa: E402, F401  (colour-blind-safe plotly default)
from app.gate import signed_in_user  # noqa: E402
from app.navigation import pages  # noqa: E402

st.set_page_config(page_title="Recipe", page_icon="🧪", layout="wide")
signed_in_user()  # stops here for anyone who may not see the app
st.navigation(pages()).run()

"""`recipe serve`'s entry point: `streamlit run app/hosted.py` finds the `st.App` below and
serves app/main.py through it, with the browser security headers (Content-Security-Policy
frame-ancestors, X-Frame-Options, X-Content-Type-Options, Referrer-Policy) on every HTTP
response. Streamlit has no option for custom headers; st.App's middleware is its supported
way to add them. `recipe app` (local) runs app/main.py directly."""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts app/ on sys.path, not the repo root.
ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from starlette.middleware import Middleware  # noqa: E402
from streamlit.starlette import App  # noqa: E402

from recipe_core.hosting.headers import SecurityHeaders  # noqa: E402

app = App("main.py", middleware=[Middleware(SecurityHeaders)])  # a path relative to this file

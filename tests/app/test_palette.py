"""The plotly default is the colour-blind-safe template once the app is imported (issue 17)."""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio

from app import palette


def test_default_template_is_okabe_ito_and_cividis() -> None:
    palette.install()
    assert pio.templates.default == palette.TEMPLATE
    fig = go.Figure(go.Scatter(y=[1, 2]))
    layout = fig.layout.template.layout
    assert tuple(c.upper() for c in layout.colorway) == palette.OKABE_ITO
    import plotly.express as px

    seq = [c for _, c in layout.colorscale.sequential]
    assert (seq[0], seq[-1]) == (px.colors.sequential.Cividis[0], px.colors.sequential.Cividis[-1])


def test_main_imports_the_palette() -> None:
    from pathlib import Path

    text = Path("app/main.py").read_text(encoding="utf-8")
    assert "import app.palette" in text

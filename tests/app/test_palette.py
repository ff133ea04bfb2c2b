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
    assert tuple(c.upper() for c in layout.colorway) == palette.CATEGORICAL
    assert len(set(palette.CATEGORICAL)) == 15  # ten classes get ten colours, not eight
    import plotly.express as px

    seq = [c for _, c in layout.colorscale.sequential]
    assert (seq[0], seq[-1]) == (px.colors.sequential.Cividis[0], px.colors.sequential.Cividis[-1])


def test_main_imports_the_palette() -> None:
    from pathlib import Path

    text = Path("app/main.py").read_text(encoding="utf-8")
    assert "import app.palette" in text


def _app_sources() -> dict[str, str]:
    from pathlib import Path

    return {str(p): p.read_text(encoding="utf-8") for p in sorted(Path("app").rglob("*.py"))}


def test_no_chart_colour_outside_the_safe_palette() -> None:
    """Every hex colour the app draws with is Okabe-Ito or a grey, every continuous scale is
    the palette's; plotly's red/green defaults (tab10, RdYlGn, Blues...) are gone."""
    import re

    safe = {c.upper() for c in palette.CATEGORICAL}
    bad = []
    for path, text in _app_sources().items():
        for colour in re.findall(r"#[0-9A-Fa-f]{6}\b", text):
            r, g, b = (colour[i : i + 2] for i in (1, 3, 5))
            if colour.upper() not in safe and not r == g == b:
                bad.append(f"{path}: {colour}")
        for scale in re.findall(r"colorscale=\"(\w+)\"", text):
            if scale != palette.SEQUENTIAL:
                bad.append(f"{path}: colorscale {scale}")
        if re.search(
            r"px\.colors\.(qualitative|diverging)|\"(tab10|RdYlGn|RdBu|Reds|Greens)\"", text
        ):
            bad.append(f"{path}: a named red/green palette")
    assert not bad, bad


def test_check_badges_do_not_pair_red_with_green() -> None:
    from app.check_widgets import BADGES

    colours = {colour for colour, _ in BADGES.values()}
    assert not {"red", "green"} <= colours
    assert len({icon for _, icon in BADGES.values()}) == len(BADGES)  # the icon tells them apart

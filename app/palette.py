"""One colour-blind-safe palette for every chart (issue 17): Okabe-Ito for
categories, Cividis for continuous scales. app/main.py imports this once."""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio

# Okabe & Ito (2008): distinguishable under protanopia, deuteranopia, tritanopia.
OKABE_ITO = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)
BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY, YELLOW, BLACK = OKABE_ITO
# Categories beyond eight (the ten digit classes): Paul Tol's muted scheme, also safe for
# colour-vision deficiencies, after Okabe-Ito; plotly's colorway used to repeat after eight,
# so class 8 was drawn in class 0's blue in every stacked histogram.
TOL_MUTED = ("#882255", "#999933", "#332288", "#44AA99", "#AA4499", "#DDCC77", "#117733")
CATEGORICAL = OKABE_ITO + TOL_MUTED
SEQUENTIAL = "Cividis"  # continuous scales: even in lightness, readable without hue
TEMPLATE = "recipe_safe"


def install() -> None:
    """Register the safe template and make it plotly's default (idempotent)."""
    template = go.layout.Template(pio.templates["plotly"])
    template.layout.colorway = list(CATEGORICAL)
    template.layout.colorscale.sequential = SEQUENTIAL
    template.layout.colorscale.sequentialminus = SEQUENTIAL
    template.layout.colorscale.diverging = SEQUENTIAL
    pio.templates[TEMPLATE] = template
    pio.templates.default = TEMPLATE


install()

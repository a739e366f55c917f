"""The body map: a front and a back outline (SVG, viewBox 0 0 200 400) and the body region a point falls in.

A spot stores its view and x/y as fractions of the drawing (0..1), so the drawing can be redrawn at any size.
The region is derived here, on the server, so that `Prediction.body_site` (the older dropdown, still in the API)
stays filled for every check filed under a spot. No Django: plain geometry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

VIEW_FRONT = "front"
VIEW_BACK = "back"
VIEWS = (VIEW_FRONT, VIEW_BACK)
WIDTH, HEIGHT = 200, 400

# The outline: the same silhouette for both views (a schematic figure, arms slightly away from the body).
# Coordinates in the viewBox; the template draws these as they are.
SILHOUETTE_PATHS = (
    # head and neck
    "M100 8 a24 26 0 1 1 -0.1 0 Z",
    "M90 56 h20 v14 h-20 Z",
    # torso
    "M62 70 Q100 62 138 70 L142 150 Q140 190 136 200 L64 200 Q60 190 58 150 Z",
    # arms and hands
    "M62 72 L44 110 L30 190 L40 192 L56 116 L64 100 Z",
    "M138 72 L156 110 L170 190 L160 192 L144 116 L136 100 Z",
    "M26 190 h18 v26 h-18 Z",
    "M156 190 h18 v26 h-18 Z",
    # legs and feet
    "M64 200 L98 200 L94 300 L92 372 L74 372 L70 300 Z",
    "M136 200 L102 200 L106 300 L108 372 L126 372 L130 300 Z",
    "M70 372 h24 v16 h-24 Z",
    "M106 372 h24 v16 h-24 Z",
)


@dataclass(frozen=True)
class Box:
    region: str
    left: float
    top: float
    right: float
    bottom: float
    views: tuple[str, ...] = VIEWS

    def contains(self, *, view: str, x: float, y: float) -> bool:
        return view in self.views and self.left <= x <= self.right and self.top <= y <= self.bottom


# Checked in order, first match wins; fractions of the drawing. Region names are Prediction.BodySite values.
# Palms face forward on the front view, soles are seen on the back view.
_BOXES = (
    Box("head_neck", 0.0, 0.0, 1.0, 70 / HEIGHT),
    Box("palms_soles", 0.0, 188 / HEIGHT, 46 / WIDTH, 220 / HEIGHT, (VIEW_FRONT,)),
    Box("palms_soles", 154 / WIDTH, 188 / HEIGHT, 1.0, 220 / HEIGHT, (VIEW_FRONT,)),
    Box("palms_soles", 0.0, 370 / HEIGHT, 1.0, 1.0, (VIEW_BACK,)),
    Box("upper_extremity", 0.0, 70 / HEIGHT, 60 / WIDTH, 220 / HEIGHT),
    Box("upper_extremity", 140 / WIDTH, 70 / HEIGHT, 1.0, 220 / HEIGHT),
    Box("oral_genital", 88 / WIDTH, 192 / HEIGHT, 112 / WIDTH, 212 / HEIGHT, (VIEW_FRONT,)),
    Box("trunk", 0.0, 70 / HEIGHT, 1.0, 204 / HEIGHT),
    Box("lower_extremity", 0.0, 204 / HEIGHT, 1.0, 1.0),
)


def region_for(*, view: str, x: float, y: float) -> str:
    """The body region (a Prediction.BodySite value) of a point on the map; raises ValueError off the map."""
    if view not in VIEWS:
        raise ValueError(f"Unknown view {view!r}: choose front or back.")
    if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
        raise ValueError("The point is outside the body map.")
    for box in _BOXES:
        if box.contains(view=view, x=x, y=y):
            return box.region
    return "unknown"  # pragma: no cover - the boxes cover the whole drawing


# Where a spot given only by its body region goes on the map (pages without JavaScript offer the region
# dropdown instead of the map): one point inside each region, checked by the tests against region_for.
_REGION_POINTS = {
    "head_neck": (VIEW_FRONT, 0.5, 0.08),
    "upper_extremity": (VIEW_FRONT, 0.2, 0.35),
    "palms_soles": (VIEW_FRONT, 0.17, 0.51),
    "oral_genital": (VIEW_FRONT, 0.5, 0.505),
    "trunk": (VIEW_FRONT, 0.5, 0.35),
    "lower_extremity": (VIEW_FRONT, 0.4, 0.7),
}


def point_for_region(region: str) -> tuple[str, float, float] | None:
    """A (view, x, y) inside `region`, or None for "unknown" (or anything else)."""
    return _REGION_POINTS.get(region)


def marker_position(*, x: float, y: float) -> tuple[float, float]:
    """Where the marker goes in the viewBox."""
    return round(x * WIDTH, 1), round(y * HEIGHT, 1)


def svg_markup(*, view: str, x: float | None = None, y: float | None = None) -> str:
    """A standalone SVG of one view with the spot marked (for the PDF report; the pages draw their own)."""
    paths = "".join(f'<path d="{d}" fill="#f1e4da" stroke="#6b5a50" stroke-width="1.5"/>' for d in SILHOUETTE_PATHS)
    marker = ""
    if x is not None and y is not None:
        cx, cy = marker_position(x=x, y=y)
        marker = f'<circle cx="{cx}" cy="{cy}" r="7" fill="#c0392b" stroke="#ffffff" stroke-width="2"/>'
    label = f'<text x="100" y="398" font-size="12" text-anchor="middle" fill="#333">{view.capitalize()}</text>'
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}">'
        f"{paths}{marker}{label}</svg>"
    )


def map_context(*, view: str | None = None, x: float | None = None, y: float | None = None) -> dict:
    """What templates/spots/_body_map.html draws: both views, and the marker on one of them if placed."""
    marker = marker_position(x=x, y=y) if x is not None and y is not None else None
    views = ((VIEW_FRONT, "Front"), (VIEW_BACK, "Back"))
    return {"paths": SILHOUETTE_PATHS, "views": views, "marked_view": view, "marker": marker}


def _fraction(value: object) -> float | None:
    if not isinstance(value, str | int | float):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def form_map_context(data: Mapping[str, object]) -> dict:
    """map_context for a form page, from what its map fields hold (the data sent, or the initial values): the
    marker only where both x and y are numbers (they come from the hidden fields, so they may be anything)."""
    x, y = _fraction(data.get("x")), _fraction(data.get("y"))
    view = data.get("view")
    return map_context(view=view if isinstance(view, str) and view else VIEW_FRONT, x=x, y=y)

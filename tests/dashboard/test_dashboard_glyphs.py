"""Every character the dashboard writes into a page has a glyph in the common sans fonts.

Headless Chromium on a server (and many lab PCs) has no colour-emoji font: emoji and rarer
symbols (U+23F5 play, U+1F534 red circle) were drawn as empty boxes. Buttons use the Material
Symbols icons Streamlit ships; text uses characters both DejaVu Sans (Linux default) and
Liberation Sans (metric twin of Arial/Helvetica) have. The fonts' own character maps are the
reference (fontTools reads them).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"
FONTS = [Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
         Path("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf")]


def _characters() -> dict[str, list[str]]:
    """Non-ASCII characters in the dashboard's sources (Python and the component's HTML) -> files."""
    found: dict[str, list[str]] = {}
    for f in sorted([*DASHBOARD.rglob("*.py"), *DASHBOARD.rglob("*.html")]):
        for ch in set(re.findall(r"[^\x00-\x7f]", f.read_text(encoding="utf-8"))):
            found.setdefault(ch, []).append(str(f.relative_to(DASHBOARD)))
    return found


@pytest.mark.skipif(not all(f.is_file() for f in FONTS), reason="DejaVu Sans / Liberation Sans not installed")
def test_every_character_has_a_glyph_in_dejavu_and_liberation_sans():
    TTFont = pytest.importorskip("fontTools.ttLib").TTFont  # comes with matplotlib

    maps = {f.stem: TTFont(f).getBestCmap() for f in FONTS}
    chars = _characters()
    assert "●" in chars  # the QC light's bullet: the scan sees the sources
    missing = {f"{ch!r} U+{ord(ch):04X} ({', '.join(chars[ch])})": [n for n, m in maps.items() if ord(ch) not in m]
               for ch in chars if any(ord(ch) not in m for m in maps.values())}
    assert not missing, f"characters without a glyph (shown as empty boxes): {missing}"
    for emoji in ("\u23f5", "\u23f8", "\U0001f534", "\U0001f7e2"):  # the test can fail: these have none
        assert any(ord(emoji) not in m for m in maps.values())

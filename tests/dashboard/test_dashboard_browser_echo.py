"""Animal QC's frame controls when the browser echoes a stale slider value (Streamlit AppTest).

Every rerun request a browser sends carries the value its slider holds. A request sent before
the reply to the previous one arrived (a second Next clicked during the first one's rerun, the
play timer's reruns) still holds the frame before: the page must not take that echo for a drag,
or the step is lost (in headless Chromium, two clicks on Next 0.15 s apart advanced one frame in
2 of 8 tries before the fix, 0 of 8 after). A value the server never drew is the user's drag and
becomes the frame.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.data import ROOT_ENV
from tests.browser_support import dashboard_fixtures


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic cohort's results (500 frames per animal, no video: frames on the arena outline)."""
    return dashboard_fixtures().make_results_root(tmp_path_factory.mktemp("dash"))


def _caption_frame(at: AppTest) -> int:
    """The frame the image's caption names (AppTest has no accessor for st.image: the tree is walked)."""
    import re

    def walk(node):
        for child in (node.children.values() if isinstance(getattr(node, "children", None), dict) else []):
            yield child
            yield from walk(child)

    found = [int(m.group(1)) for e in walk(at._tree) if getattr(e, "type", None) == "image"
             for img in e.proto.imgs if (m := re.search(r"frame (\d+) \(t =", img.caption))]
    assert len(found) == 1, found
    return found[0]


def test_a_stale_slider_echo_does_not_undo_a_step(root: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(ROOT_ENV, str(root))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py"), default_timeout=90)
    at.run()
    at.switch_page("pages/animal_qc.py").run()
    assert not at.exception, at.exception
    for i in range(1, 4):
        at.button(key="qc_next").click().run()
        assert at.slider(key="qc_frame").value == i == _caption_frame(at)
    # Next again, sent by a browser still holding frame 2 (the reply that drew 3 not yet in)
    at.slider(key="qc_frame").set_value(2)
    at.button(key="qc_next").click().run()
    assert not at.exception, at.exception
    assert at.slider(key="qc_frame").value == 4 == _caption_frame(at)
    # a drag to a frame the server never drew is taken, steps go on from there
    at.slider(key="qc_frame").set_value(250).run()
    assert at.slider(key="qc_frame").value == 250 == _caption_frame(at)
    at.button(key="qc_prev").click().run()
    assert at.slider(key="qc_frame").value == 249 == _caption_frame(at)
    # once the browser has caught up (a request that echoes 249), a drag back to an earlier
    # drawn frame counts
    at.run()
    at.slider(key="qc_frame").set_value(250).run()
    assert at.slider(key="qc_frame").value == 250 == _caption_frame(at)


def test_slider_frame_on_a_plain_state():
    """The rule alone, on a dict standing in for the session state (no Streamlit)."""
    from dashboard.frames import SliderFrame

    state: dict = {}
    frame = SliderFrame(state, "f", 10)

    def request(browser_value: int | None, step: int = 0) -> int:  # one rerun: callback, then draw
        if browser_value is not None:
            state["f"] = browser_value  # the value the browser sent with the request
        if step:
            frame.go(frame.current() + step)
        return frame.draw()

    assert request(None) == 0
    assert request(0, +1) == 1
    assert request(0, +1) == 2  # sent before the reply that drew 1: an echo, the step counts
    assert request(1, +1) == 3  # still behind
    assert request(3) == 3 and state["f_sent"] == [3]  # caught up: only the newest is kept
    assert request(7) == 7  # a drag
    assert request(7, +5) == 9  # clipped to the last frame
    assert request(99) == 9 and request(-4, -1) == 0  # a value out of range clipped too
    for _ in range(3 * SliderFrame.KEEP):  # a browser that never answers: memory stays bounded
        request(0, +1)
    assert len(state["f_sent"]) <= SliderFrame.KEEP

"""The pose file review page in headless Chromium: a person finds the injected identity swap of two
virtual mice in the suspect table, jumps to it, swaps the identities back and undoes it, then
opens a 3D pose and sees its trajectory in 3D.

Screenshots go to ``$ETHOPOSE_SCREENSHOT_DIR`` (default /tmp/dashboard_shots):
``pose_review_identities_at_swap.png`` (before the correction), ``pose_review_identities_corrected.png``
and ``pose_review_3d.png``.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import numpy as np
import pytest

from dashboard.cli import dashboard_command
from tests.browser_support import (
    CHROMIUM,
    SKIP_REASON,
    Browser,
    free_port,
    serve,
    shots_dir,
    sidebar_link_centre,
    stop,
    wait_http,
    wait_until,
)

# slow: the fixture tracks a 20 s session and the page reruns several times (about 30 s CPU with the browser)
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)]

_spec = importlib.util.spec_from_file_location("dashboard_fixtures", Path(__file__).with_name("dashboard_fixtures.py"))
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)
SWAP = fixtures.INJECTED_SWAP_FRAME

#: the per-identity paths of the trajectory figure, as drawn in the page
_TRACKS_JS = """(() => { const gd = [...document.querySelectorAll('.js-plotly-plot')].find(
    g => g.layout && g.layout.meta === 'identity_trajectory');
  if (!gd || !gd._fullData) return null;
  return gd._fullData.filter(t => t.mode === 'lines').map(t => ({name: t.name, colour: t.line.color,
     x: Array.from(t.x, v => v == null ? null : Number(v)), y: Array.from(t.y, v => v == null ? null : Number(v))})); })()"""
_SLIDER_JS = """(() => { const t = [...document.querySelectorAll('[data-testid="stSlider"]')].find(
    s => s.innerText.includes('Frame (row)'));
  const v = t && t.querySelector('[data-testid="stSliderThumbValue"]'); return v ? parseInt(v.innerText) : null; })()"""
_CAPTION_JS = """(() => { const i = document.querySelector('[data-testid="stImage"]');
  return i ? i.parentElement.innerText : ''; })()"""
_SCENE_JS = """(() => { const gd = [...document.querySelectorAll('.js-plotly-plot')].find(
    g => g.layout && g.layout.meta === 'trajectory_3d');
  if (!gd || !gd._fullLayout || !gd._fullLayout.scene) return null;
  gd.scrollIntoView();
  const c = gd.querySelector('canvas'); const s = gd._fullLayout.scene;
  return {aspectmode: s.aspectmode, ratio: s.aspectratio, types: gd._fullData.map(t => t.type),
          canvas: c ? [c.width, c.height] : null, webgl_error: gd.innerText.includes('WebGL'),
          z: s.zaxis.title.text}; })()"""


def _choose(browser: Browser, label: str, text: str) -> list[str]:
    """Pick the option of the selectbox ``label`` that starts with ``text``, as a person does: click the box,
    type, Enter. Returns the options the open list showed for ``text``."""
    xy = browser.eval(f"""(() => {{ const s = [...document.querySelectorAll('[data-testid="stSelectbox"]')].find(
        e => e.innerText.split('\\n')[0].trim() === {label!r});
      if (!s) return null; const i = s.querySelector('input'); i.scrollIntoView({{block: 'center'}});
      const r = i.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; }})()""")
    assert xy, f"no selectbox {label!r}"
    browser.click(*xy)
    time.sleep(0.3)
    browser.call("Input.insertText", text=text)
    shown = wait_until(lambda: browser.eval("[...document.querySelectorAll('[role=\"option\"]')].map(o => o.innerText)"), 10)
    browser.press("Enter")
    return shown or []




def _steps(tracks: list[dict]) -> dict[str, np.ndarray]:
    """One-frame displacement of each identity's centroid, px (NaN where it is unseen in either frame)."""
    return {t["name"]: np.hypot(np.diff(np.array(t["x"], float)), np.diff(np.array(t["y"], float))) for t in tracks}


def _settled(browser: Browser, *texts: str) -> bool:
    txt = browser.text()
    return all(t in txt for t in texts) and not browser.running() and browser.drawn()


def test_pose_review_in_chromium(tmp_path: Path):
    made = fixtures.make_pose_review_root(tmp_path / "root")
    root = tmp_path / "root"
    before_bytes = made["tracked"].read_bytes()
    port = free_port()
    log = tmp_path / "server.log"
    server = serve(dashboard_command(root, port, browser=False), env=dict(os.environ, ETHOPOSE_DASHBOARD_ROOT=str(root)),
                   log=log)
    shots = shots_dir()
    browser = None
    try:
        base = f"http://127.0.0.1:{port}/"
        assert wait_http(base + "_stcore/health", 90) == b"ok"
        browser = Browser(tmp_path, window=(1400, 1000))
        # the dashboard's own address first (the server learns the app's pages from app.py's first run)
        assert "Root:" in browser.open(base, ["Cohort overview", "Root:"])
        browser.click(*sidebar_link_centre(browser, "Pose file review"))
        assert wait_until(lambda: _settled(browser, "Pose file review", "Identities", "swap suspects", "Next suspect"), 240)
        txt = browser.text()
        assert "Traceback" not in txt and "/tmp/" not in txt.replace(str(root), ""), txt[:600]
        # the suspect list offers the injected swap: a jump of each track at frame SWAP
        options = _choose(browser, "Go to suspect", f"frame {SWAP} ")
        print(f"suspects at frame {SWAP} in the list: {options}")
        assert sorted(o.split(" · ")[1] for o in options if "jump of" in o) == ["track_0", "track_1"], options
        assert wait_until(lambda: browser.eval(_SLIDER_JS) == SWAP and _settled(browser, f"frame {SWAP} (t ="), 90), \
            (browser.eval(_SLIDER_JS), browser.text()[-800:])
        shown = browser.eval(_CAPTION_JS)
        print(f"after picking the suspect: slider at {browser.eval(_SLIDER_JS)}, image caption {shown!r}")
        assert f"frame {SWAP} (t = 16.00 s)" in shown
        tracks = browser.eval(_TRACKS_JS)
        steps = _steps(tracks)
        assert [t["colour"] for t in tracks] == ["#0072B2", "#E69F00"]
        print("before the correction, largest step per identity (px): "
              + ", ".join(f"{n} {np.nanmax(s):.0f} at frame {int(np.nanargmax(s)) + 1}" for n, s in steps.items()))
        assert all(int(np.nanargmax(s)) + 1 == SWAP and np.nanmax(s) > 200 for s in steps.values())
        browser.screenshot(shots / "pose_review_identities_at_swap.png", full_page=True)
        # swap the two identities from this frame on: the two paths are continuous again
        xy = browser.eval("""(() => { const b = [...document.querySelectorAll('button')].find(
            e => /^Swap track_\\d and track_\\d from frame \\d+ on$/.test(e.innerText.split('\\n').pop().trim()));
          if (!b) return null; b.scrollIntoView({block: 'center'}); const r = b.getBoundingClientRect();
          return [r.left + r.width / 2, r.top + r.height / 2, b.innerText]; })()""")
        assert xy and f"from frame {SWAP} on" in xy[2], xy
        browser.click(xy[0], xy[1])
        assert wait_until(lambda: _settled(browser, "Swapped track_", "Corrections recorded"), 90), browser.text()[:600]
        fixed = _steps(browser.eval(_TRACKS_JS))
        from dashboard.identities import corrections, identity_tracks, max_step_px
        from pose.io import load

        reference = max_step_px(identity_tracks(load(made["ok"])))  # the tracker's output, before the injected swap
        print("after the correction, largest step per identity (px): "
              + ", ".join(f"{n} {np.nanmax(s):.1f} (at the swap frame {s[SWAP - 1]:.1f})" for n, s in fixed.items())
              + f"; the tracker's own output: {np.round(reference, 1).tolist()}")
        np.testing.assert_allclose([np.nanmax(s) for s in fixed.values()], reference, rtol=1e-6)
        assert all(s[SWAP - 1] < 20 for s in fixed.values())
        assert corrections(load(made["tracked"])).from_frame.tolist() == [SWAP]  # written, in the file's history
        browser.screenshot(shots / "pose_review_identities_corrected.png", full_page=True)
        browser.click(*browser.button("Undo last correction"))
        assert wait_until(lambda: _settled(browser, "Undone:"), 90), browser.text()[:600]
        assert made["tracked"].read_bytes() == before_bytes
        # a triangulated pose: its path in 3D (WebGL) and its height over time
        _choose(browser, "Pose file", "threed/points3d.nc")
        assert wait_until(lambda: _settled(browser, "3D trajectory", "floor:") and browser.eval(_SCENE_JS), 120), \
            browser.text()[:600]
        time.sleep(1.5)
        scene = browser.eval(_SCENE_JS)
        print(f"3D view: {scene}")
        assert scene["aspectmode"] == "data" and "scatter3d" in scene["types"] and scene["z"] == "z (mm)"
        assert not scene["webgl_error"] and scene["canvas"] and min(scene["canvas"]) > 100, scene
        browser.screenshot(shots / "pose_review_3d.png", full_page=True)
    except BaseException:
        if browser is not None:  # what the page showed when the test failed
            browser.screenshot(shots / "pose_review_failure.png", full_page=True)
        print("server log (tail):\n" + log.read_text()[-4000:])
        raise
    finally:
        if browser is not None:
            browser.close()
        stop(server)

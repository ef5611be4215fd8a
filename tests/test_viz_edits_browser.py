"""An edit run's widget plays in Chromium on a static page: frames change length as it plays.

The page is written the way ``test_viz_browser`` writes its pages (embedded widget state, the
vendored ``require.js`` and html-manager, served on 127.0.0.1, every other request aborted).
Pressing Play must walk through the hand-built edit run of ``test_viz_edits``: an inserted
word appears (the words after it move right), a deleted one is struck through and then gone,
and a substitution shows its old word in a tooltip — with no console error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import serve_directory

sys.path.insert(0, str(Path(__file__).parent))
from test_viz_browser import LABEL_HAS, Visit, _vendor_dir, browser, write_page  # noqa: E402, F401
from test_viz_edits import make_edit_trajectory  # noqa: E402

from diffusion_lab.viz import unmasking_widget  # noqa: E402


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("edit-site")
    (root / "vendor").symlink_to(_vendor_dir(), target_is_directory=True)
    box = unmasking_widget(make_edit_trajectory(), interval_ms=400, link="js")
    write_page(box, root / "edits.html", "edits")
    with serve_directory(root) as url:
        yield url


TEXT_IS = "(s) => document.querySelector('div.dlv').innerText.trim() === s"


def test_edit_widget_plays_frames_of_changing_length(site, browser):  # noqa: F811
    v = Visit(browser, f"{site}/edits.html")
    try:
        assert v.text(".dll") == "step 0/3, 4 words"
        assert v.text("div.dlv").strip() == "the dog runs ."
        v.press_play()
        v.wait_until(TEXT_IS, "the clever dog runs .")  # inserted: "dog runs ." moved right
        assert v.page.inner_text("div.dlv span.i").strip() == "clever"
        green = v.page.eval_on_selector(
            "div.dlv span.i", "e => getComputedStyle(e).backgroundColor")
        assert green == "rgb(200, 230, 201)"  # the .i class of the one <style> block
        v.wait_until(LABEL_HAS, "-1 deleted")
        struck = v.page.eval_on_selector(
            "div.dlv span.d", "e => getComputedStyle(e).textDecorationLine")
        assert "line-through" in struck
        assert v.page.get_attribute("div.dlv span.d", "title") == "deleted: runs"
        v.wait_until(LABEL_HAS, "step 3/3")
        assert v.text("div.dlv").strip() == "the big dog sleeps ."
        assert v.page.get_attribute("div.dlv span.u", "title") == "replaced: clever"
        assert v.errors == [], v.errors
        assert v.external == [], v.external
    finally:
        v.close()

"""``scripts/make_hero_gif.py`` and the README's first picture, ``book/_static/hero.gif``.

GitHub's README view shows files of the repository, not the book's build, so the GIF is a
committed, generated asset.  Its comment records what made it (the script, the cpu profile's
grammar MDLM, the sampling recipe) and the sentence it shows.  Checked here: the committed file is
small, animates one frame per step plus the start, names its maker and shows a sentence that the
grammar accepts; the script runs (smoke profile) and writes such a file.  Not checked here: that
regenerating it on this machine draws the same sentence (``make_hero_gif.py --check``): the
book's model is trained on the machine that runs the tests, and another CPU or thread count can
change its last bits and the sentence drawn; that is no defect of the committed file.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from PIL import Image

import diffusion_lab as dl
from diffusion_lab.worlds.grammar import book_language

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("make_hero_gif",
                                              REPO / "scripts" / "make_hero_gif.py")
make_hero_gif = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_hero_gif)


def check_hero(path: Path, profile: str) -> dict[str, str]:
    note = make_hero_gif.read_comment(path)
    text = Image.open(path).info["comment"].decode()
    assert text.startswith(f"made by {make_hero_gif.MAKER}\n"), text
    assert note["profile"] == profile and note["model"] == "grammar-mdlm", note
    length = book_language().max_len
    assert f"ancestral, {length} steps, seed {make_hero_gif.SEED}" in note["recipe"], note
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == length + 1  # the start, then each step
    return note


def test_committed_hero_is_small_and_shows_a_grammatical_sentence():
    hero = make_hero_gif.HERO
    assert hero == REPO / "book" / "_static" / "hero.gif" and hero.is_file()
    assert hero.stat().st_size < 300_000  # observed: 36 kB
    note = check_hero(hero, "cpu")
    assert "the first grammatical one" in note["recipe"], note
    assert book_language().is_valid([note["sentence"]]).item(), note["sentence"]
    top = " ".join((REPO / "README.md").read_text().split("\n## ")[0].split())  # first section
    assert top.startswith("# diffusion-lab ![") and "(book/_static/hero.gif)" in top
    valid = note["recipe"].split("(")[1].split(" of ")[0]  # "9 of 16 are)"
    assert f'writing "{note["sentence"]}"' in top, "the README's alt text names the sentence"
    assert f"{valid} of them grammatical" in top, "the README's caption gives the rate"


def test_script_writes_a_hero_gif(tmp_path):
    out = tmp_path / "hero.gif"
    assert make_hero_gif.main(["--profile", "smoke", "--out", str(out)]) == 0
    note = check_hero(out, "smoke")
    traj, index = make_hero_gif.hero_trajectory(dl.profile("smoke"))
    assert note["sentence"] == book_language().canonical([traj.texts[index]])[0]  # seeded
    assert make_hero_gif.main(["--profile", "smoke", "--out", str(out), "--check"]) == 0

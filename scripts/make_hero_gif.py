"""Write ``book/_static/hero.gif``, the README's first picture: a sentence unmasking.

    python scripts/make_hero_gif.py                # the cpu profile's grammar MDLM (the book's)
    python scripts/make_hero_gif.py --check        # exit 1 if the committed GIF's sentence differs
    python scripts/make_hero_gif.py --profile smoke --out /tmp/hero.gif

Why a committed file: GitHub's README view shows files of the repository, never the book's build
output, so this picture is generated here and committed (``.gitignore`` ignores every other GIF).
The recipe is the introduction's first figure: the book's grammar MDLM (``dl.zoo.pretrained
("grammar-mdlm")``, trained once and cached) samples 16 sentences with ``ancestral``, one step per
slot, seed 1, and the first grammatical one is drawn.  The GIF's comment records the recipe and
the sentence; ``tests/test_make_hero_gif.py`` checks the committed file against it.  A model
trained on another CPU, or with another thread count, may differ in its last bits and draw
another sentence: ``--check`` says so, and rerunning the script is the fix.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import diffusion_lab as dl  # noqa: E402
from diffusion_lab.worlds.grammar import book_language  # noqa: E402

HERO = ROOT / "book" / "_static" / "hero.gif"
SAMPLES, SEED, FPS = 16, 1, 3
MAKER = "scripts/make_hero_gif.py"


def hero_trajectory(prof) -> tuple[dl.trajectory.Trajectory, int]:
    """(trajectory of `SAMPLES` sentences, index of the first grammatical one; 0 if none)."""
    model, tok, _ = dl.zoo.pretrained("grammar-mdlm", prof)
    length = book_language().max_len
    traj = dl.generate(model, tok, prompts=[""], length=length, steps=length,
                       strategy="ancestral", seed=SEED, num_samples=SAMPLES)
    valid = book_language().is_valid(traj.texts)
    return traj, int(valid.nonzero()[0, 0]) if valid.any() else 0


def comment(traj: dl.trajectory.Trajectory, index: int, profile: str) -> str:
    """The GIF's comment: who made it, from what, and the sentence it shows."""
    sentence = book_language().canonical([traj.texts[index]])[0]
    valid = int(book_language().is_valid(traj.texts).sum())
    which = (f"the first grammatical one ({valid} of {SAMPLES} are)" if valid
             else "none is grammatical")
    return (f"made by {MAKER}\nprofile: {profile}\nmodel: grammar-mdlm\n"
            f"recipe: {SAMPLES} samples, ancestral, {traj.num_steps} steps, seed {SEED}; sample "
            f"{index}, {which}\nsentence: {sentence}")


def read_comment(path: Path) -> dict[str, str]:
    """The ``key: value`` lines of a GIF written by this script (empty if it has none)."""
    from PIL import Image

    with Image.open(path) as image:
        text = image.info.get("comment", b"").decode()
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=list(dl.course.profiles.PROFILES), default="cpu")
    parser.add_argument("--out", type=Path, default=HERO)
    parser.add_argument("--check", action="store_true",
                        help="compare the sentence with the one in --out; write nothing")
    args = parser.parse_args(argv)
    traj, index = hero_trajectory(dl.profile(args.profile))
    note = comment(traj, index, args.profile)
    if args.check:
        want = dict(line.split(": ", 1) for line in note.splitlines() if ": " in line)
        have = read_comment(args.out)
        same = have.get("sentence") == want["sentence"] and have.get("recipe") == want["recipe"]
        print(f"{args.out}: {'up to date' if same else 'differs'} (committed: "
              f"{have.get('sentence')!r}; now: {want['sentence']!r})")
        return 0 if same else 1
    path = dl.viz.save_gif(traj, args.out, fps=FPS, sample=index, comment=note)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} kB): {note.splitlines()[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The notebook the grader runs (diffusion_lab/classroom/restore.py): the teacher's check cells
back in place whatever the submission did to them, tampering named by label, the student's own
cells kept where they put them."""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from diffusion_lab.classroom import editions
from diffusion_lab.classroom.checkcells import check_cell_label
from diffusion_lab.classroom.examples import model_submission
from diffusion_lab.classroom.restore import restore

MINI = Path(__file__).resolve().parent / "fixtures" / "classroom" / "mini.ipynb"


def _editions():
    source = nbformat.read(MINI, as_version=4)
    return editions.student_notebook(source), model_submission(source), source


def _checks(nb) -> dict:
    return {check_cell_label(c): c.source for c in nb.cells if check_cell_label(c)}


def test_an_untouched_submission_runs_as_it_is():
    edition, solved, _ = _editions()
    for nb in (edition, solved):
        out, tampered = restore(edition, nb)
        assert tampered == {} and [c.source for c in out.cells] == [c.source for c in nb.cells]


def test_edited_moved_deleted_checks_are_put_back_and_named():
    edition, solved, _ = _editions()
    nb = copy.deepcopy(solved)
    labels = list(_checks(edition))
    by_label = {check_cell_label(c): i for i, c in enumerate(nb.cells) if check_cell_label(c)}
    nb.cells[by_label[labels[1]]].source = "print('passed')"
    moved = nb.cells.pop(by_label[labels[2]])
    del nb.cells[by_label[labels[0]]]
    nb.cells.insert(1, moved)
    out, tampered = restore(edition, nb)
    assert tampered == {labels[0]: "deleted", labels[1]: "edited", labels[2]: "moved"}
    assert _checks(out) == _checks(edition)
    positions = [i for i, c in enumerate(out.cells) if check_cell_label(c)]
    assert positions == [i for i, c in enumerate(edition.cells) if check_cell_label(c)]


def test_stripped_metadata_and_ids_still_match():
    edition, solved, _ = _editions()
    nb = copy.deepcopy(solved)
    for cell in nb.cells:  # what a notebook tool that drops ids and metadata leaves
        cell.pop("id", None)
        cell["metadata"] = {}
    out, tampered = restore(edition, nb)
    assert tampered == {}
    assert [c.source for c in out.cells] == [c.source for c in solved.cells]


def test_students_own_cells_stay_and_deleted_answer_slots_stay_deleted():
    edition, solved, _ = _editions()
    nb = copy.deepcopy(solved)
    slot = next(i for i, c in enumerate(nb.cells) if "slot" in c.metadata.get("diffusion_lab",
                                                                             {}))
    given = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and not
                 c.metadata.get("diffusion_lab"))
    mine = nbformat.v4.new_code_cell("tau = 0.9  # written in a cell of my own")
    nb.cells[slot] = mine
    del nb.cells[given]
    out, _ = restore(edition, nb)
    sources = [c.source for c in out.cells]
    assert mine.source in sources and solved.cells[slot].source not in sources
    assert edition.cells[given].source in sources  # the chapter's own code is put back
    assert sources.index(mine.source) > sources.index(edition.cells[given].source)


def test_the_teacher_edition_handed_in_is_flagged_but_runs():
    edition, _, source = _editions()
    out, tampered = restore(edition, editions.teacher_notebook(source))
    assert set(tampered.values()) == {"deleted"}  # its checks live in the answer cells
    assert _checks(out) == _checks(edition)

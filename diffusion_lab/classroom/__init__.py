"""The teacher's wing: student and teacher editions of every notebook, exercise checks, grading.

* `editions` — one source, two editions (solutions stripped for the student; each check call in a
  locked, checksummed check cell of its own: ``checkcells``);
* `exercises` — the checks a chapter's compute exercises call (``dl.exercises.ch5.check_...``),
  each declaring which of its arguments are the student's answers;
* `grading` — grade a class's submitted notebooks: the teacher edition run for the context
  (``reference``), each submission restored (``restore``) and run in a bubblewrap sandbox
  (``sandbox``, ``runner``), its checks run by the grader itself (``judge``) on the answers the
  kernel hands over as data (``capture``, ``codec``, ``rpc``); a CSV and feedback files
  (``results``).

A wing: it imports the core and `course`; no core module imports it.
"""

from . import editions, exercises, grading

__all__ = ["editions", "exercises", "grading"]

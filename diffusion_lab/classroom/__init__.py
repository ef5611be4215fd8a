"""The teacher's wing: student and teacher editions of every notebook, exercise checks, grading.

* `editions` — one source, two editions (solutions stripped for the student);
* `exercises` — the checks a chapter's compute exercises call (``dl.exercises.ch5.check_...``);
* `grading` — execute a class's submitted notebooks, write a CSV.

A wing: it imports the core and `course.notebook`; no core module imports it.
"""

from . import editions, exercises, grading

__all__ = ["editions", "exercises", "grading"]

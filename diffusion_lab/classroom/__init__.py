"""The classroom wing: student and teacher editions, the checks, and grading a class's
submissions in a sandbox (``sandbox``), from checks the grader runs itself (``judge``)."""

"""Worlds with exact answers: a toy language whose probabilities are known, puzzles, questions.

* `grammar` — a small probabilistic grammar (``book_language()``): every sentence's exact
  probability, its entropy, a word-level tokenizer; `grammar_oracle` — the exact conditionals
  $p(x^i \\mid x_{-i})$ as a masked LM; `grammar_metrics` — samples and models measured against
  the truth (chapter 5b);
* `tasks` — puzzles with checkers (addition, sorting, mini-Sudoku; chapters 6 and 7);
* `qa` — question-answer families with exact checkers (chapter 8).

A wing: it imports the core (``diffusion_lab``'s top-level modules), and no core module imports
it (``book/architecture.md``, ``tests/test_architecture.py``).
"""

from . import grammar, grammar_metrics, grammar_oracle, qa, tasks

__all__ = ["grammar", "grammar_metrics", "grammar_oracle", "qa", "tasks"]

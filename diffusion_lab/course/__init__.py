"""What the book's chapters need around the library: profiles, the model zoo, notebook helpers.

* `profiles` — the three run profiles (``cpu``, ``gpu``, ``smoke``): ``dl.profile()``;
* `recipes` — the recipe book: every zoo model as one frozen record (architecture, objective,
  data, budget per profile);
* `zoo` — the shared models, trained once per profile and cached (``dl.zoo.pretrained``);
* `notebook` — a chapter's one-line set-up, ``glue`` and ``claim`` (``dl.notebook``);
* `estimate` — each chapter's minutes on a Colab T4, from measured costs;
* `colab` — the install cell every notebook starts with; `book` — the book's checkout
  (``_toc.yml``, ``_config.yml``).

A wing: it imports the core and the `worlds`; no core module imports it.
"""

from . import book, colab, estimate, notebook, profiles, recipes, zoo

__all__ = ["book", "colab", "estimate", "notebook", "profiles", "recipes", "zoo"]

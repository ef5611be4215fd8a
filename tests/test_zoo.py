"""The zoo's cache key and the recipe book: code, not prose or file layout, decides a retrain."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

import diffusion_lab as dl
from diffusion_lab.course import recipes, zoo

FUNCTION = '''
def f(x):
    """Double."""
    return 2 * np.ones(x)  # twice
'''
HELPER = '''
def g(y):
    return helper(y) + 1
'''


def test_the_key_follows_code_not_prose():
    code = 'def f(x):\n    """Double."""\n    return 2 * x  # twice\n'
    prose = 'def f(x):\n    """Twice x, reworded."""\n    # a new comment\n    return 2 * x\n'
    changed = 'def f(x):\n    """Double."""\n    return 3 * x\n'
    assert zoo.code_fingerprint(code) == zoo.code_fingerprint(prose)
    assert zoo.code_fingerprint(code) != zoo.code_fingerprint(changed)


def test_moving_a_function_between_hashed_modules_keeps_the_hash():
    a = "import numpy as np\nfrom .helpers import helper\n" + FUNCTION + HELPER
    b = "from . import noise\n\nX = 3\n"
    a_after = "from .helpers import helper\n" + HELPER
    b_after = "import numpy as np\nfrom . import noise\n\nX = 3\n" + FUNCTION
    assert zoo.sources_hash([a, b]) == zoo.sources_hash([a_after, b_after])
    assert zoo.sources_hash([a, b]) == zoo.sources_hash([b, a])  # module order
    assert zoo.sources_hash([a, b]) != zoo.sources_hash([a_after, b])  # dropping the function does


def test_a_module_moved_into_a_package_keeps_its_hash():
    """``grammar.py`` -> ``worlds/grammar.py``: every relative import gains a dot."""
    flat = "from .tokenization import SPECIAL_TOKENS\nfrom . import noise\n" + FUNCTION
    nested = "from ..tokenization import SPECIAL_TOKENS\nfrom .. import noise\n" + FUNCTION
    lazy = "def h():\n    from .tokenization import X\n    return X\n"
    lazy_nested = "def h():\n    from ..tokenization import X\n    return X\n"
    assert zoo.code_fingerprint(flat) == zoo.code_fingerprint(nested)
    assert zoo.code_fingerprint(lazy) == zoo.code_fingerprint(lazy_nested)


def test_a_function_hashed_alone_or_inside_its_module_hashes_the_same():
    module = "X = 1\n" + FUNCTION
    assert zoo.sources_hash([module]) == zoo.sources_hash(["X = 1\n", FUNCTION])
    indented = "\n".join("    " + line for line in FUNCTION.splitlines())  # a method's source
    assert zoo.code_fingerprint(indented) == zoo.code_fingerprint(FUNCTION)


def test_a_renaming_import_still_counts():
    """``import x as y`` binds a different name to a different thing: not layout."""
    assert zoo.code_fingerprint("import numpy as np\n" + FUNCTION) != zoo.code_fingerprint(
        "import cupy as np\n" + FUNCTION)
    assert zoo.code_fingerprint("try:\n    import fcntl\nexcept ImportError:\n    pass\n") == \
        zoo.code_fingerprint("try:\n    pass\nexcept ImportError:\n    pass\n")


def test_the_moved_init_hashes_as_it_did_in_grammar_metrics():
    """`recipes.symmetry_breaking_init` moved unchanged from ``grammar_metrics.py`` (issue 22):
    inside either module, with either module's imports, it contributes the same statements."""
    source = inspect.getsource(recipes.symmetry_breaking_init)
    old = "import torch\n\nfrom .grammar import EOS, Grammar\n\nEMBEDDING_STD = 1.0\n" + source
    new = "import torch\n\nfrom ..settings import TrainSettings\n\nEMBEDDING_STD = 1.0\n" + source
    assert zoo.sources_hash([old]) == zoo.sources_hash([new])


def test_the_key_counts_settings_recipe_and_code():
    prof = dl.profile("smoke")
    plan = recipes.plan("mdlm", prof)
    assert zoo.key(plan) == zoo.key(recipes.plan("mdlm", dl.profile("smoke").with_()))
    assert zoo.key(plan) != zoo.key(recipes.plan("mdlm", prof.with_(lr=1e-3)))  # settings
    assert zoo.key(plan) != zoo.key(recipes.plan("variable_rate", prof))  # objective
    assert zoo.key(plan).startswith(f"mdlm-shakespeare-xs-L{prof.seq_len}-S{prof.train_steps}-")
    assert zoo.training_code(plan) != zoo.training_code(recipes.plan("grammar-mdlm", prof))
    assert recipes.symmetry_breaking_init in zoo.training_code(recipes.plan("grammar-mdlm", prof))
    assert dl.worlds.qa in zoo.training_code(recipes.plan("qa-ar", prof))


@pytest.mark.parametrize("name", ["smoke", "cpu", "gpu"])
def test_every_recipe_plans_under_every_profile(name):
    prof = dl.profile(name)
    for recipe in recipes.RECIPES.values():
        plan = recipes.plan(recipe.name, prof)
        assert plan.settings.objective == recipe.objective
        assert recipe.factory in zoo.FACTORIES and recipe.data in recipes.DATA
    character = [recipes.plan(k, prof) for k in ("mlm", "variable_rate", "mdlm", "ar")]
    for plan in character:  # equal compute: the profile's own budget
        cfg = plan.settings
        assert (cfg.steps, cfg.batch_size, cfg.seq_len, cfg.lr, cfg.warmup, plan.size) == (
            prof.train_steps, prof.batch_size, prof.seq_len, prof.lr, prof.warmup, prof.model_size)
        assert cfg.eval_every == cfg.steps and cfg.checkpoint_every == max(1, cfg.steps // 4)
    qa = [recipes.plan(k, prof) for k in ("qa-diffusion", "qa-ar")]
    assert qa[0].settings == qa[1].settings and qa[0].size == qa[1].size
    assert qa[0].settings.warmup == min(100, qa[0].settings.steps // 5 + 1)
    assert qa[0].settings.checkpoint_every == 0 and qa[0].corpus == "qa"


def test_recipe_names_and_overrides():
    prof = dl.profile("smoke")
    assert recipes.get("variable") is recipes.RECIPES["variable_rate"]  # the old name
    with pytest.raises(ValueError, match="kind must be one of") as err:
        recipes.get("grammar")
    assert "'grammar'" in str(err.value)
    code = recipes.plan("mdlm", prof, corpus_name="python-code", steps=7)
    assert (code.corpus, code.settings.steps) == ("python-code", 7)
    with pytest.raises(ValueError, match="corpus_name"):
        recipes.plan("grammar-ar", prof, corpus_name="python-code")
    with pytest.raises(ValueError, match="kind must be one of"):
        zoo.pretrained_qa("bert", prof)
    assert dataclasses.is_dataclass(recipes.RECIPES["mdlm"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipes.RECIPES["mdlm"].lr = 1.0

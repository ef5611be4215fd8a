/* diffusion-lab live: the book's grammar, checked exactly in the browser (export/grammar.py).
 *
 * A grammar model's exported JSON carries spec.grammar = {category, templates, max_len, eos}:
 * every word's one part of speech and the grammar's templates (category sequences). A sentence is
 * in the language exactly when, without its trailing [EOS] padding, it has at most max_len words,
 * every word is a word of the grammar (no special token), and its category sequence is a
 * template: the same test as dl.worlds.grammar.Grammar.is_valid (tests/test_live_grammar.py).
 */
(function (root) {
  "use strict";

  const sets = new WeakMap(); // spec.grammar -> Set of templates, built once

  /* {valid, reason} for one decoded sentence (words joined by spaces) */
  function verdict(spec, text) {
    const g = spec.grammar;
    if (!sets.has(g)) sets.set(g, new Set(g.templates));
    const words = String(text).split(/\s+/).filter(Boolean);
    while (words.length && words[words.length - 1] === g.eos) words.pop();
    if (!words.length) return { valid: false, reason: "an empty sentence" };
    if (words.length > g.max_len) return { valid: false, reason: `longer than ${g.max_len} words` };
    const cats = [];
    for (const w of words) {
      if (w === g.eos) return { valid: false, reason: `a word after ${g.eos}` };
      if (!(w in g.category)) return { valid: false, reason: `"${w}" is not a word of the grammar` };
      cats.push(g.category[w]);
    }
    const key = cats.join(" ");
    return sets.get(g).has(key) ? { valid: true, reason: key } : { valid: false, reason: `no rule writes ${key}` };
  }

  /* what the panel's status line says at the end of a run */
  function describe(spec, text) {
    const v = verdict(spec, text);
    return v.valid ? " — in the language ✓ (the grammar's exact check)"
      : ` — not in the language ✗ (${v.reason})`;
  }

  root.DLLiveGrammar = { verdict, describe };
})(typeof window !== "undefined" ? window : globalThis);

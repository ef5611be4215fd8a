/* diffusion-lab live: the question-answering panel of chapter 8 (controls and rules; panel.js
 * draws).  Markup:  <div class="dl-live" data-model="qa" data-kind="qa" hidden></div>
 *
 * The reader asks a question of one of dl.qa's families (their patterns come with the exported
 * model: spec.qa.families) and may tick "force": the answer's first token is then the *wrong*
 * verdict of a yes/no claim ("no" for a true claim, "yes" for a false one), appended to the
 * prompt and marked revisable (dl.qa.ask(..., forced=..., revise_forced=True)): a revising
 * strategy (reread_remask, the default here as in the chapter: it re-reads every decoded token in
 * the present context) may send it back to [MASK] and decode it again.  The positions follow
 * qa.ask: n = |tok(q)|, the forced tokens are |tok(q + forced)| - n slots from text position n.
 */
(function (root) {
  "use strict";

  const MAX_CHARS = 60;

  /* the family whose pattern `question` matches in full, or null */
  function family(spec, question) {
    for (const [name, pattern] of Object.entries(spec.qa.families))
      if (new RegExp(`^(?:${pattern})$`).test(question)) return name;
    return null;
  }

  /* a claim "is a+b=c?" is true when a + b = c (dl.qa.Claims.is_true) */
  function isTrue(spec, question) {
    const m = new RegExp(`^(?:${spec.qa.families[spec.qa.claims]})$`).exec(question);
    return m !== null && Number(m[1]) + Number(m[2]) === Number(m[3]);
  }

  /* {prompt, revisable, forced} for a question, or {problem} (a message for the reader) */
  function plan(spec, question, force, length) {
    const S = root.DLLiveSampler;
    question = question.trim();
    if (!question) return { problem: "Type a question first (or pick an example)." };
    if (question.length > MAX_CHARS) return { problem: `The question is ${question.length} characters long; keep it under ${MAX_CHARS}.` };
    const name = family(spec, question);
    if (name === null)
      return { problem: `The model knows three forms of question only: "is 3+4=7?", "what is 3+4?", "count 3 to 6?" (one-digit numbers work best).` };
    let forced = "";
    if (force) {
      if (name !== spec.qa.claims) return { problem: `"Force" applies to yes/no questions ("is 3+4=7?"); this is a question of the ${name} family.` };
      forced = spec.qa.forced[isTrue(spec, question) ? "true" : "false"];
    }
    const n = S.encode(spec, question).ids.length;
    const withForced = S.encode(spec, question + forced).ids.length;
    if (withForced >= length) return { problem: `The question is ${withForced} tokens long; the model sees ${length}, and the answer needs room.` };
    const revisable = Array.from({ length: withForced - n }, (_, k) => n + k);
    return { prompt: question + forced, revisable, forced, question };
  }

  /* the answer of a frame: the text after the question, cut at the first [EOS] (decode_texts) */
  function answer(spec, f, nQuestion) {
    const ids = Array.from(f.ids.slice(1 + nQuestion, f.L));
    const eos = ids.indexOf(spec.special.eos);
    return root.DLLiveSampler.decode(spec, eos < 0 ? ids : ids.slice(0, eos)).trim();
  }

  /* add the example list and the force box to the panel's controls; return the panel's hooks */
  function controls(spec, panel, h, field, prompt, container) {
    const examples = h("select", { "data-dl": "examples", "aria-label": "example questions" });
    examples.append(h("option", { value: "" }, "examples…"));
    for (const q of spec.qa.examples) examples.append(h("option", { value: q }, q));
    examples.addEventListener("change", () => { if (examples.value) prompt.value = examples.value; });
    const force = h("input", { "data-dl": "force", type: "checkbox" });
    if (panel.dataset.force === "true") force.checked = true;
    const box = h("label", { title: "the wrong verdict of a yes/no claim, revisable" }, "");
    box.append(force, ` force the first answer token to ${spec.qa.forced.true}/${spec.qa.forced.false}`);
    container.insertBefore(examples, prompt.parentElement.nextSibling);
    container.insertBefore(box, examples.nextSibling);
    if (!prompt.value) prompt.value = spec.qa.examples[0];
    let current = null;
    return {
      plan(s) { // the panel's settings -> the sampler's settings, or {problem}
        current = plan(spec, s.prompt, force.checked, s.length);
        return current.problem ? current : Object.assign({}, s, { prompt: current.prompt, revisable: current.revisable });
      },
      describe(f) { // appended to the status line at the end of a run
        if (!current || current.problem) return "";
        const n = root.DLLiveSampler.encode(spec, current.question).ids.length;
        const a = answer(spec, f, n);
        let revised = "";
        if (current.forced)
          revised = a.startsWith(current.forced) ? ` (the forced "${current.forced}" stayed)` : ` (the forced "${current.forced}" was revised)`;
        return ` — answer: "${a}"${revised}`;
      },
    };
  }

  root.DLLiveQA = { family, isTrue, plan, answer, controls, MAX_CHARS };
})(typeof window !== "undefined" ? window : globalThis);

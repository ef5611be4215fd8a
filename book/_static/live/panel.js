/* diffusion-lab live panel: type a prompt, press Generate, watch a book model unmask it.
 *
 * Markup (one line in a page; book/_ext/live_models.py ships the model files):
 *   <div class="dl-live" data-model="mdlm" data-prompt="ROMEO:"></div>
 * or, for chapter 8's question box and "force" toggle (qa.js), data-model="qa" data-kind="qa".
 * This script fills it with the controls (stable data-dl attributes: prompt, strategy, steps,
 * temperature, seed, generate, step, output, status), loads onnxruntime-web (vendored, WebAssembly)
 * and the exported model, and draws each frame like diffusion_lab/viz/html.py: masks as the
 * block character, confidence as a background colour, the slots of this step outlined, slots
 * remasked struck through in red.  Without WebAssembly the panel stays hidden and the page's
 * recorded animation is what the reader sees.  Nothing is fetched from another host.
 */
(function () {
  "use strict";
  const S = window.DLLiveSampler;
  const HERE = new URL(".", document.currentScript.src); // .../_static/live/
  const ORT_DIR = new URL("../vendor/onnxruntime-web/", HERE);
  const MODELS = new URL("models/", HERE);
  const BLOCK = "\u2592"; // one per masked slot, as in the recorded animation
  const PACE_MS = 120; // at least this long per frame while playing: readable, not a blur

  const loadScript = (src) => new Promise((resolve, reject) => {
    const el = document.createElement("script");
    el.src = src;
    el.onload = resolve;
    el.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.appendChild(el);
  });

  // Model files: fetch over http(s); a page opened from disk (file://) cannot fetch, so the
  // build also writes <name>.js, which calls DLLive.register with the same bytes (base64).
  const registered = {};
  const bytesOf = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  async function fetchOrScript(url, key) {
    if (location.protocol !== "file:") {
      const r = await fetch(url);
      if (!r.ok) throw new Error(`${url} answered ${r.status}`);
      return new Uint8Array(await r.arrayBuffer());
    }
    if (!registered[key]) await loadScript(`${url}.js`);
    if (!registered[key]) throw new Error(`${url}.js did not register ${key}`);
    return bytesOf(registered[key]);
  }

  let ortReady = null;
  function loadRuntime() {
    if (!ortReady) ortReady = (async () => {
      await loadScript(new URL("ort.wasm.min.js", ORT_DIR).href);
      const ort = window.ort;
      ort.env.wasm.numThreads = 1; // a static host is not cross-origin isolated: no threads
      ort.env.wasm.proxy = false;
      if (location.protocol === "file:") { // no fetch/import from disk: hand over the bytes
        const mjs = new TextDecoder().decode(await fetchOrScript(new URL("ort-wasm-simd-threaded.mjs", ORT_DIR).href, "ort-mjs"));
        ort.env.wasm.wasmBinary = await fetchOrScript(new URL("ort-wasm-simd-threaded.wasm", ORT_DIR).href, "ort-wasm");
        ort.env.wasm.wasmPaths = { mjs: URL.createObjectURL(new Blob([mjs], { type: "text/javascript" })) };
      } else {
        ort.env.wasm.wasmPaths = ORT_DIR.href;
      }
      return ort;
    })();
    return ortReady;
  }

  const models = {};
  function loadModel(name) {
    if (!models[name]) models[name] = (async () => {
      const base = new URL(`${name}`, MODELS).href;
      const [spec, onnx, ort] = await Promise.all([
        fetchOrScript(`${base}.json`, `${name}.json`).then((b) => JSON.parse(new TextDecoder().decode(b))),
        fetchOrScript(`${base}.onnx`, `${name}.onnx`),
        loadRuntime(),
      ]);
      const session = await ort.InferenceSession.create(onnx, { executionProviders: ["wasm"] });
      const forward = async (ids, B, L) => {
        const input = new ort.Tensor("int64", BigInt64Array.from(ids, (v) => BigInt(v)), [B, L]);
        const out = await session.run({ [spec.inputs.ids]: input });
        return out[spec.inputs.logp].data;
      };
      return { spec, forward, session };
    })();
    return models[name];
  }

  /* Run a whole sampling to the end; the tests and the benchmark call this. */
  async function run(name, settings) {
    const { spec, forward } = await loadModel(name);
    const frames = [];
    for await (const f of S.generate(forward, spec, settings)) frames.push(f);
    return { spec, frames };
  }

  /* ------------------------------------------------------------------------- drawing */
  function paletteCss(spec) {
    const id = `dl-live-palette-${spec.name}`;
    if (document.getElementById(id)) return;
    const style = document.createElement("style");
    style.id = id;
    style.textContent = spec.palette.map((c, k) => `.dl-live .dlv .c${k}{background:${c}}`).join("");
    document.head.appendChild(style);
  }

  // what one token shows: its vocabulary string, or for byte-level BPE its decoded text (bpe.js)
  const tokenText = (spec, id) => (spec.split === "bpe" ? window.DLLiveBPE.tokenText(spec, id) : spec.vocab[id]);

  function drawFrame(out, spec, f, prev, fixed, given) {
    // one span per slot after the anchor: class p prompt, m masked, x remasked, cK confidence
    // bin (floor(p * bins)), n written this step (viz/slots.py and viz/html.py); r a given
    // revisable token (a forced answer token) that now differs from what was given
    const frag = document.createDocumentFragment();
    let revised = 0;
    for (let i = 1; i < f.L; i++) {
      const span = document.createElement("span");
      if (fixed[i]) { span.className = "p"; span.textContent = tokenText(spec, f.ids[i]); }
      else if (f.remasked[i]) {
        span.className = "x"; span.textContent = BLOCK;
        span.title = `remasked: ${prev ? tokenText(spec, prev.ids[i]) : ""}`;
      } else if (f.masked[i]) { span.className = "m"; span.textContent = BLOCK; }
      else {
        const bin = Math.max(0, Math.min(spec.bins - 1, Math.floor(f.conf[i] * spec.bins)));
        span.className = `c${bin}` + (f.revealed[i] ? " n" : "");
        span.textContent = tokenText(spec, f.ids[i]);
        if (given && given[i] >= 0) {
          span.classList.add(given[i] === f.ids[i] ? "g" : "r");
          span.title = given[i] === f.ids[i] ? "given (forced), revisable"
            : `revised: ${tokenText(spec, given[i])} \u2192 ${tokenText(spec, f.ids[i])}`;
          revised += given[i] !== f.ids[i];
        }
      }
      if (spec.join && i < f.L - 1) frag.append(span, spec.join); else frag.append(span);
    }
    out.replaceChildren(frag);
    out.dataset.step = String(f.step);
    out.dataset.masks = String(f.masked.reduce((a, m, i) => a + (i < f.L ? m : 0), 0));
    out.dataset.revised = String(revised);
  }

  function label(f) {
    let revealed = 0, back = 0;
    for (let i = 0; i < f.L; i++) { revealed += f.revealed[i]; back += f.remasked[i]; }
    return `step ${f.step}/${f.n}, ${revealed} ${revealed === 1 ? "token" : "tokens"} revealed` +
      (back ? `, ${back} remasked` : "");
  }

  /* ------------------------------------------------------------------------- the panel */
  function build(panel) {
    const name = panel.dataset.model;
    const h = (tag, attrs, text) => {
      const el = document.createElement(tag);
      for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
      if (text) el.textContent = text;
      return el;
    };
    const field = (text, input) => { const l = h("label", {}, text + " "); l.append(input); return l; };
    const qaPanel = panel.dataset.kind === "qa"; // chapter 8: a question, examples, force (qa.js)
    const prompt = h("input", { "data-dl": "prompt", type: "text", size: "28", value: panel.dataset.prompt || "", "aria-label": qaPanel ? "question" : "prompt" });
    const strategy = h("select", { "data-dl": "strategy" });
    for (const s of ["low_confidence", "threshold", "random", "confidence_weighted", "reread_remask", "ancestral"]) strategy.append(h("option", { value: s }, s));
    const steps = h("input", { "data-dl": "steps", type: "number", min: "1", value: "32", style: "width:4.5em" });
    const temperature = h("input", { "data-dl": "temperature", type: "number", min: "0", step: "0.1", value: "1", style: "width:4.5em" });
    const seed = h("input", { "data-dl": "seed", type: "number", value: "0", style: "width:5em" });
    const generate = h("button", { "data-dl": "generate", type: "button" }, "Generate");
    const step = h("button", { "data-dl": "step", type: "button" }, "Step");
    const status = h("div", { "data-dl": "status", class: "dl-live-status", role: "status" }, "The model loads when this panel comes into view…");
    const out = h("div", { "data-dl": "output", class: "dlv", "aria-live": "off" });
    const controls = h("div", { class: "dl-live-controls" });
    controls.append(field(qaPanel ? "Question" : "Prompt", prompt), field("Strategy", strategy), field("Steps", steps),
      field("Temperature", temperature), field("Seed", seed), generate, step);
    panel.replaceChildren(controls, status, out);
    panel.hidden = false;

    let spec = null, forward = null, run = null, token = 0, qa = null;
    const say = (text, error) => { status.textContent = text; status.classList.toggle("dl-live-error", !!error); status.setAttribute("role", error ? "alert" : "status"); };
    const settings = () => ({
      prompt: prompt.value, strategy: strategy.value, steps: Number(steps.value),
      temperature: Number(temperature.value), seed: Number(seed.value) | 0,
      length: Number(panel.dataset.length) || spec.defaults.length,
      promptRequired: panel.dataset.allowEmpty !== "true",
    });
    function start() { // a new run, or a message instead of a silent hang
      let s = settings();
      if (qa) { // the question's family, the forced token: a message for what the model cannot do
        if (!Number.isInteger(s.steps) || s.steps < 1) { say(`Steps must be a whole number >= 1 (got ${s.steps}).`, true); run = null; return null; }
        s = qa.plan(s);
        if (s.problem) { say(s.problem, true); run = null; return null; }
      }
      const problem = S.validate(spec, s.prompt, s.length, s.steps, s.temperature, s.promptRequired);
      if (problem) { say(problem, true); run = null; return null; }
      const fixed = new Uint8Array(s.length + 1).fill(1), given = new Int32Array(s.length + 1).fill(-1);
      const iter = S.generate(forward, spec, s);
      return (run = { iter, fixed, given, prev: null, done: false, first: true });
    }
    async function advance(r) { // draw the next frame of run r; false when it has ended
      const t0 = performance.now();
      const { value: f, done } = await r.iter.next();
      if (done) { r.done = true; return false; }
      if (r.first) { // free slots: the region (masked, or given and revisable)
        for (let i = 0; i < f.L; i++) {
          r.fixed[i] = (f.region ? f.region[i] : f.masked[i]) ? 0 : 1;
          if (!r.fixed[i] && !f.masked[i]) r.given[i] = f.ids[i];
        }
        r.first = false;
      }
      drawFrame(out, spec, f, r.prev, r.fixed, r.given);
      if (f.step > 0) panel.dlStats.stepMs.push(performance.now() - t0);
      if (f.step === 1 && panel.dlStats.firstFrame === null) panel.dlStats.firstFrame = performance.now();
      const finished = f.step > 0 && !f.masked.some((m, i) => m && !r.fixed[i]);
      say(f.step === 0 ? "start: every free slot masked" + (r.given.some((g) => g >= 0) ? " but the forced one" : "")
        : label(f) + (finished ? " — done" + (qa ? qa.describe(f) : "") + grammarVerdict(f) : ""));
      r.prev = f;
      return true;
    }
    // a grammar model's sentence, checked exactly (grammar.js): "in the language" or why not
    const grammarVerdict = (f) => {
      if (!spec.grammar || !window.DLLiveGrammar) return "";
      const words = Array.from(f.ids.slice(0, f.L)).filter((id) => id !== spec.special.cls).map((id) => spec.vocab[id]);
      return window.DLLiveGrammar.describe(spec, words.join(" "));
    };
    const guard = (fn) => async () => {
      if (!spec) return say("The model is still loading…", false);
      try { await fn(); } catch (e) { say(`Error: ${e.message}`, true); run = null; }
    };
    generate.addEventListener("click", guard(async () => {
      const mine = ++token;
      const r = run && !run.done ? run : start();
      if (!r) return;
      while (mine === token && (await advance(r))) {
        await new Promise((ok) => setTimeout(ok, PACE_MS));
      }
    }));
    step.addEventListener("click", guard(async () => {
      token++; // a Step pauses a running Generate
      const r = run && !run.done ? run : start();
      if (r && !(await advance(r))) { run = null; say(status.textContent + " (press Step for a new run)"); }
    }));
    panel.dlStats = { ready: null, firstFrame: null, stepMs: [] };
    const load = () => loadModel(name).then((m) => {
      spec = m.spec; forward = m.forward;
      paletteCss(spec);
      steps.value = panel.dataset.steps || spec.defaults.steps;
      temperature.value = panel.dataset.temperature || spec.defaults.temperature;
      if (qaPanel && window.DLLiveQA && spec.qa) qa = window.DLLiveQA.controls(spec, panel, h, field, prompt, controls);
      else if (qaPanel) throw new Error("this model has no questions (qa.js or spec.qa missing)");
      strategy.value = panel.dataset.strategy || spec.defaults.strategy;
      panel.dlStats.ready = performance.now();
      panel.dataset.ready = "true";
      say(`Ready: ${spec.name}, ${spec.vocab.length} tokens, up to ${spec.max_length} per text. Press Generate.`);
    }).catch((e) => say(`Could not start the live model: ${e.message}`, true));
    // Load the runtime (14 MB of WebAssembly) and the model only when the panel comes near the
    // screen: a reader who never scrolls down downloads nothing.
    let started = false;
    const startLoading = () => {
      if (!started) { started = true; say("Loading the model…"); load(); }
    };
    if ("IntersectionObserver" in window) {
      const io = new IntersectionObserver((seen) => {
        if (seen.some((e) => e.isIntersecting)) { io.disconnect(); startLoading(); }
      }, { rootMargin: "600px" });
      io.observe(panel);
    } else startLoading();
    panel.addEventListener("focusin", startLoading);
  }

  window.DLLive = { register: (key, b64) => { registered[key] = b64; }, loadModel, run, build };
  const init = () => {
    if (typeof WebAssembly !== "object") return; // the recorded animation stays the lesson
    document.querySelectorAll(".dl-live[data-model]").forEach(build);
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();

/* diffusion-lab live sampler: the reverse process of diffusion_lab/sampling.py, in the browser.
 *
 * Masked diffusion (MDLM, Sahoo et al. 2024) generates by walking t from 1 (every free slot is
 * [MASK]) down to 0.  Each step asks the model for log p_theta(x^i | z_t) at every slot, draws a
 * proposal x_hat^i with its confidence p^i = p_theta(x_hat^i | z_t), and lets a *strategy* decide
 * which slots take their proposal (update) and which decoded slots go back to [MASK] (remask).
 * This file mirrors generate() and five rules of strategies.py and strategies_revision.py; no DOM
 * here (panel.js draws).
 *
 * The model is any function forward(ids, B, L) -> Promise<Float32Array (B*L*V)> of
 * log-probabilities with the banned ids ([MASK], the anchor, [SEP]) at -Infinity
 * (diffusion_lab/export/onnx.py's graph).
 */
(function (root) {
  "use strict";

  /* ---------------------------------------------------------------------------------------
   * CONVENTIONS shared with diffusion_lab/sampling.py and strategies.py.  They live here, in
   * one place, so that a change on the Python side is one edit here; tests/test_live_parity.py
   * compares this file with dl.generate at run time and fails on any mismatch.
   *   - rows are [CLS] anchor, prompt tokens, then `length - |prompt|` masks (sampling.prepare);
   *   - time grid t_i = 1 - i / n, step i goes from t = t_i to s = t_{i+1} (generate);
   *   - schedule: rate(s) = s (linear) or sin(pi s / 2) (cosine) (noise.mask_rate);
   *   - reveal count: after the step round(N * rate(s)) free slots stay masked, N = free slots,
   *     round = half to even like torch.round (StepContext.reveal_count; the rule is the
   *     function revealCount below — a LLaDA-style split of the budget would change only it);
   *   - the loop's last step reveals every remaining mask and remasks nothing;
   *   - the model is called again only when the ids changed (generate's `cached`);
   *   - the loop stops early once no free slot is masked.
   * ------------------------------------------------------------------------------------- */
  const CONVENTIONS = {
    timeGrid: (n) => Array.from({ length: n + 1 }, (_, i) => 1 - i / n),
    maskRate: (s, schedule) => (schedule === "cosine" ? Math.sin((Math.PI * s) / 2) : s),
    round: roundHalfEven,
  };

  function roundHalfEven(x) {
    const f = Math.floor(x);
    const d = x - f;
    if (d > 0.5) return f + 1;
    if (d < 0.5) return f;
    return f % 2 === 0 ? f : f + 1;
  }

  /* Seeded PRNG: sfc32 (Chris Doty-Humphrey's small fast counter), state from splitmix32.
   * uniform() returns a double in (0, 1) with 53 random bits.  Not torch's generator: a seed
   * gives the same text every time here, but not the same text as dl.generate. */
  function makeRng(seed) {
    let s = (seed >>> 0) ^ 0x9e3779b9;
    const split = () => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    let a = split(), b = split(), c = split(), d = split();
    const u32 = () => {
      const t = (((a + b) | 0) + d) | 0;
      d = (d + 1) | 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) | 0;
      c = (c << 21) | (c >>> 11);
      c = (c + t) | 0;
      return t >>> 0;
    };
    for (let i = 0; i < 12; i++) u32();
    return {
      uniform() {
        const hi = u32() >>> 5, lo = u32() >>> 6; // 27 + 26 = 53 bits
        return (hi * 67108864 + lo + 0.5) / 9007199254740992;
      },
    };
  }

  /* ---------------------------------------------------------------- tokenizer (export/onnx.py) */
  function encode(spec, text) {
    if (spec.split === "bpe") return root.DLLiveBPE.encode(spec, text); // bpe.js
    const pieces = spec.split === "char" ? Array.from(text) : text.split(/\s+/).filter(Boolean);
    const index = spec._index || (spec._index = new Map(spec.vocab.map((t, i) => [t, i])));
    const ids = [], unknown = [];
    for (const piece of pieces) {
      const id = index.get(piece);
      if (id === undefined || spec.banned.includes(id)) unknown.push(piece);
      else ids.push(id);
    }
    return { ids, unknown: Array.from(new Set(unknown)) };
  }

  /* Check the reader's settings; return a message for the first problem, or null. */
  function validate(spec, prompt, length, steps, temperature, promptRequired) {
    if (!Number.isInteger(steps) || steps < 1) return `Steps must be a whole number >= 1 (got ${steps}).`;
    if (!Number.isInteger(length) || length < 1 || length > spec.max_length)
      return `Length must be between 1 and ${spec.max_length} tokens (got ${length}).`;
    if (!(temperature >= 0)) return `Temperature must be >= 0 (got ${temperature}); 0 = greedy.`;
    if (promptRequired && !prompt.trim()) return "Type a prompt first: this model needs one.";
    const { ids, unknown } = encode(spec, prompt);
    if (unknown.length)
      return `Not in the model's vocabulary: ${unknown.slice(0, 8).map((u) => JSON.stringify(u)).join(", ")}` +
        (spec.split === "char" ? " (this model knows only the characters of its corpus)." : ".");
    if (ids.length > length)
      return `The prompt is ${ids.length} tokens long; the model writes at most ${length} (prompt included).`;
    return null;
  }

  /* ------------------------------------------------------------------------- strategies
   * Each rule(ctx) returns {update, remask}: Uint8Array(B*L) masks (strategies.py). */
  function topKMask(ctx, score, k) {
    // per row: true at the k[b] highest finite scores, ties to the lower position
    // (torch.argsort(descending=True, stable=True) in strategies.top_k_mask).
    const { B, L } = ctx, out = new Uint8Array(B * L);
    for (let b = 0; b < B; b++) {
      const order = [];
      for (let i = 0; i < L; i++) if (Number.isFinite(score[b * L + i])) order.push(i);
      order.sort((i, j) => score[b * L + j] - score[b * L + i] || i - j);
      for (let r = 0; r < Math.min(k[b], order.length); r++) out[b * L + order[r]] = 1;
    }
    return out;
  }
  function maskedScore(ctx, values) {
    // a score over the masked free slots only; -Infinity elsewhere (_where_masked)
    const score = new Float64Array(ctx.B * ctx.L).fill(-Infinity);
    for (let j = 0; j < score.length; j++) if (ctx.masked[j] && ctx.region[j]) score[j] = values[j];
    return score;
  }
  function revealCount(ctx, extra) {
    // reveal so that round(N * rate(s)) free slots stay masked (StepContext.reveal_count)
    const { B, L } = ctx, k = new Array(B);
    const rate = CONVENTIONS.maskRate(ctx.s, ctx.options.schedule);
    for (let b = 0; b < B; b++) {
      let total = 0, now = 0;
      for (let i = 0; i < L; i++) {
        total += ctx.region[b * L + i];
        now += ctx.masked[b * L + i] & ctx.region[b * L + i];
      }
      k[b] = Math.max(0, now - CONVENTIONS.round(total * rate) + (extra ? extra[b] : 0));
    }
    return k;
  }
  const none = (ctx) => new Uint8Array(ctx.B * ctx.L);

  /* Re-read every decoded slot in the present context (strategies_revision.reread_scores,
   * score="probe"): one probe row per decoded slot, with that slot masked, all in one call.
   * now[j] = p(x_j | z with slot j masked), top[j] its argmax, pTop[j] that probability
   * (float64 softmax of the float32 log-probabilities, as the Python side); passes: the most
   * probe rows of one sample. */
  async function rereadScores(forward, spec, x, decoded, B, L) {
    const V = spec.vocab.length, where = [];
    for (let j = 0; j < B * L; j++) if (decoded[j]) where.push(j);
    const now = new Float64Array(B * L), top = Int32Array.from(x), pTop = new Float64Array(B * L);
    if (!where.length) return { now, top, pTop, passes: 0 };
    const rows = new Int32Array(where.length * L), perRow = new Array(B).fill(0);
    where.forEach((j, k) => {
      const b = Math.floor(j / L);
      rows.set(x.subarray(b * L, (b + 1) * L), k * L);
      rows[k * L + (j % L)] = spec.special.mask;
      perRow[b]++;
    });
    const logp = await forward(rows, where.length, L);
    where.forEach((j, k) => {
      const base = (k * L + (j % L)) * V;
      let max = -Infinity, arg = 0, sum = 0;
      for (let v = 0; v < V; v++) if (logp[base + v] > max) { max = logp[base + v]; arg = v; }
      for (let v = 0; v < V; v++) sum += Math.exp(logp[base + v] - max);
      now[j] = Math.exp(logp[base + x[j]] - max) / sum;
      top[j] = arg;
      pTop[j] = 1 / sum;
    });
    return { now, top, pTop, passes: Math.max(...perRow) };
  }

  const STRATEGIES = {
    // MDLM ancestral: reveal each masked slot with prob (alpha_s - alpha_t) / (1 - alpha_t)
    ancestral(ctx) {
      const rate = (u) => CONVENTIONS.maskRate(u, ctx.options.schedule);
      const pReveal = (rate(ctx.t) - rate(ctx.s)) / Math.max(1e-12, rate(ctx.t));
      const update = none(ctx);
      for (let j = 0; j < update.length; j++)
        update[j] = ctx.masked[j] && ctx.region[j] && ctx.uniform(j) < pReveal ? 1 : 0;
      return { update, remask: none(ctx) };
    },
    // Mask-Predict / LLaDA: reveal the reveal_count most confident masked slots (by p)
    low_confidence(ctx) {
      return { update: topKMask(ctx, maskedScore(ctx, ctx.p), revealCount(ctx)), remask: none(ctx) };
    },
    // commit every masked slot with p >= threshold, and at least the most confident one
    threshold(ctx) {
      const score = maskedScore(ctx, ctx.p);
      const update = topKMask(ctx, score, new Array(ctx.B).fill(1));
      for (let j = 0; j < score.length; j++) if (score[j] >= ctx.options.threshold) update[j] = 1;
      return { update, remask: none(ctx) };
    },
    // the seed article: resample every free slot, then remask each with probability rate(s)
    random(ctx) {
      const rate = CONVENTIONS.maskRate(ctx.s, ctx.options.schedule);
      const update = Uint8Array.from(ctx.region), remask = none(ctx);
      for (let j = 0; j < remask.length; j++) remask[j] = ctx.region[j] && ctx.uniform(j) < rate ? 1 : 0;
      return { update, remask };
    },
    // remask decoded slot with prob scale * (1 - conf)^power (at most round(N rate(s)) of them,
    // least confident first), then reveal the most confident masks to follow the schedule
    confidence_weighted(ctx) {
      if (ctx.step === ctx.n - 1) return STRATEGIES.low_confidence(ctx);
      const { B, L } = ctx, o = ctx.options;
      const rate = CONVENTIONS.maskRate(ctx.s, o.schedule);
      const drawn = new Float64Array(B * L).fill(-Infinity);
      for (let j = 0; j < B * L; j++) {
        const decoded = ctx.region[j] && !ctx.masked[j];
        const c = Math.min(1, Math.max(0, ctx.conf[j]));
        if (decoded && ctx.uniform(j) < o.remask_scale * Math.pow(1 - c, o.remask_power)) drawn[j] = -ctx.conf[j];
      }
      const target = new Array(B);
      for (let b = 0; b < B; b++) {
        let total = 0;
        for (let i = 0; i < L; i++) total += ctx.region[b * L + i];
        target[b] = ctx.t === 0 ? total : CONVENTIONS.round(total * rate); // after the schedule: no cap
      }
      const remask = topKMask(ctx, drawn, target);
      const extra = new Array(B).fill(0);
      for (let j = 0; j < B * L; j++) extra[Math.floor(j / L)] += remask[j];
      return { update: topKMask(ctx, maskedScore(ctx, ctx.p), revealCount(ctx, extra)), remask };
    },
    // strategies_revision.reread_remask: remask each decoded token whose confidence re-read in
    // the present context (ctx.reread) is below remask_below, least confident first, at most
    // round(N rate(s)); then reveal the most confident masks to keep the schedule
    reread_remask(ctx) {
      const { B, L } = ctx, o = ctx.options;
      const rate = CONVENTIONS.maskRate(ctx.s, o.schedule);
      const doubt = new Float64Array(B * L).fill(-Infinity);
      for (let j = 0; j < B * L; j++)
        if (ctx.region[j] && !ctx.masked[j] && ctx.reread[j] < o.remask_below) doubt[j] = -ctx.reread[j];
      const target = new Array(B);
      for (let b = 0; b < B; b++) {
        let total = 0;
        for (let i = 0; i < L; i++) total += ctx.region[b * L + i];
        target[b] = ctx.t === 0 ? total : CONVENTIONS.round(total * rate); // after the schedule: no cap
      }
      const remask = topKMask(ctx, doubt, target);
      const extra = new Array(B).fill(0);
      for (let j = 0; j < B * L; j++) extra[Math.floor(j / L)] += remask[j];
      return { update: topKMask(ctx, maskedScore(ctx, ctx.p), revealCount(ctx, extra)), remask };
    },
  };
  STRATEGIES.reread_remask.reread = true; // the loop re-reads decoded slots first (rereadScores)
  // strategies_revision.checking_time_grid: the linear grid, then `rounds` steps at t = s = 0
  // that re-read the finished text; the block stops at the first of them that takes nothing
  // back (nothing_doubted)
  STRATEGIES.reread_remask.timeGrid = (n, o) =>
    CONVENTIONS.timeGrid(n).concat(new Array(o.rounds === undefined ? 2 : o.rounds).fill(0));

  /* ------------------------------------------------------------------------- the loop
   * generate(forward, spec, {prompt, length, steps, strategy, temperature, seed, batch})
   * (+ revisable: text positions of prompt tokens a revising rule may change, revise.js)
   * is an async generator of frames {step, n, ids, masked, conf, revealed, remasked, region, B, L};
   * the first frame (step 0) is the start state.  temperature 0 means greedy (argmax), the
   * limit T -> 0 of the tempered draw. */
  async function* generate(forward, spec, settings) {
    const o = Object.assign({}, spec.options, settings.options || {});
    const { prompt = "", length, steps, strategy, temperature = 1, seed = 0, batch = 1 } = settings;
    const problem = validate(spec, prompt, length, steps, temperature, settings.promptRequired);
    if (problem) throw new Error(problem);
    const rule = STRATEGIES[strategy];
    if (!rule) throw new Error(`Unknown strategy ${JSON.stringify(strategy)}; one of ${Object.keys(STRATEGIES).join(", ")}.`);
    const B = batch, L = length + 1, V = spec.vocab.length, MASK = spec.special.mask;
    const promptIds = encode(spec, prompt).ids, revisable = settings.revisable || [];
    const bad = root.DLLiveRevise ? root.DLLiveRevise.check(revisable, promptIds.length, length)
      : revisable.length ? "revisable needs revise.js" : null;
    if (bad) throw new Error(bad);
    const x = new Int32Array(B * L).fill(MASK), region = new Uint8Array(B * L);
    const conf = new Float64Array(B * L), masked = new Uint8Array(B * L);
    for (let b = 0; b < B; b++) {
      x[b * L] = spec.special.cls; // the anchor, never masked
      promptIds.forEach((id, i) => { x[b * L + 1 + i] = id; });
      for (let i = 0; i < L; i++) {
        const j = b * L + i;
        masked[j] = x[j] === MASK ? 1 : 0;
        region[j] = masked[j]; // free = not fixed: the slots to fill
        conf[j] = region[j] ? 0 : 1;
      }
    }
    const nSteps = rule.timeGrid ? rule.timeGrid(steps, o).length - 1 : steps;
    // one stream per row: row b of seed s is the same whatever the batch size
    const rngs = Array.from({ length: B }, (_, b) => makeRng(Math.imul(seed + 1, 0x2545f491) ^ b));
    const uniform = (j) => rngs[Math.floor(j / L)].uniform();
    if (revisable.length) // given tokens a revising rule may change: free, decoded (revise.js)
      await root.DLLiveRevise.startState(forward, spec, revisable, { x, region, masked, conf, B, L });
    const frame = (step, revealed, remasked) => ({ step, n: nSteps, B, L, ids: Int32Array.from(x),
      masked: Uint8Array.from(masked), conf: Float64Array.from(conf), revealed, remasked, region });
    yield frame(0, new Uint8Array(B * L), new Uint8Array(B * L));
    const grid = rule.timeGrid ? rule.timeGrid(steps, o) : CONVENTIONS.timeGrid(steps);
    const n = grid.length - 1; // steps of the grid: the schedule's, and any re-reading rounds
    if (rule.reread && (o.score || "probe") !== "probe")
      throw new Error(`The page re-reads by probing only (score "probe"), got ${JSON.stringify(o.score)}.`);
    let logp = null, reread = null;
    for (let i = 0; i < n; i++) {
      if (logp === null) { logp = await forward(x, B, L); reread = null; }
      // proposal x_hat = argmax_v (log p_v / T + g_v), g ~ Gumbel(0, 1)  (sample_filtered);
      // confidence p = p_theta(x_hat | z_t), untempered, rounded to float32 as probability_of
      const proposal = Int32Array.from(x), p = new Float64Array(B * L);
      for (let j = 0; j < B * L; j++) {
        if (!region[j]) continue;
        let best = -Infinity, arg = 0, top = -Infinity, sum = 0;
        const base = j * V;
        for (let v = 0; v < V; v++) {
          const lp = logp[base + v];
          if (lp === -Infinity) continue;
          if (lp > top) { sum = sum * Math.exp(top - lp) + 1; top = lp; } else sum += Math.exp(lp - top);
          const score = temperature === 0 ? lp : lp / temperature - Math.log(-Math.log(uniform(j)));
          if (score > best) { best = score; arg = v; }
        }
        proposal[j] = arg; // p = exp(logp - logsumexp(logp)) in float32, as probability_of
        p[j] = Math.fround(Math.exp(Math.fround(logp[base + arg] - (top + Math.log(sum)))));
      }
      const decoded = new Uint8Array(B * L);
      for (let j = 0; j < B * L; j++) decoded[j] = region[j] && !masked[j] ? 1 : 0;
      if (rule.reread) { // every decoded token re-scored in z_t; its proposal: the re-read top
        if (reread === null) reread = await rereadScores(forward, spec, x, decoded, B, L);
        for (let j = 0; j < B * L; j++) if (decoded[j]) { proposal[j] = reread.top[j]; p[j] = reread.pTop[j]; }
      }
      const ctx = { B, L, x, masked, region, proposal, p, conf, t: grid[i], s: grid[i + 1],
                    step: i, n, options: o, uniform, reread: reread && reread.now };
      let { update, remask } = rule(ctx);
      if (i === n - 1) { // the last step leaves no mask behind
        for (let j = 0; j < B * L; j++) update[j] |= masked[j] & region[j];
        remask = new Uint8Array(B * L);
      }
      const revealed = new Uint8Array(B * L), remasked = new Uint8Array(B * L);
      let changed = false, left = false;
      for (let j = 0; j < B * L; j++) {
        const before = x[j], wasMasked = masked[j];
        if (rule.reread && decoded[j]) conf[j] = reread.now[j]; // a kept token: its confidence now
        if (update[j]) { x[j] = proposal[j]; conf[j] = p[j]; masked[j] = 0; }
        if (remask[j]) { x[j] = MASK; conf[j] = 0; masked[j] = 1; }
        if (x[j] !== before) changed = true;
        revealed[j] = update[j] && !remask[j] && (wasMasked || x[j] !== before) ? 1 : 0;
        remasked[j] = remask[j] && !wasMasked ? 1 : 0;
        if (masked[j] && region[j]) left = true;
      }
      if (changed) logp = null;
      yield frame(i + 1, revealed, remasked);
      // e.g. threshold committed everything early; a re-reading rule: a round at t = 0 that
      // took nothing back (nothing_doubted)
      if (!left && (!rule.reread || grid[i] === 0)) break;
    }
  }

  function decode(spec, ids) {
    if (spec.split === "bpe") return root.DLLiveBPE.decode(spec, ids);
    return Array.from(ids, (id) => spec.vocab[id]).join(spec.join);
  }

  root.DLLiveSampler = { CONVENTIONS, STRATEGIES, makeRng, roundHalfEven, encode, decode, validate, generate, rereadScores };
})(typeof window !== "undefined" ? window : globalThis);

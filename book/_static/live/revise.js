/* diffusion-lab live: given prompt tokens that a revising strategy may change ("revisable").
 *
 * Chapter 8 forces the first answer token ("no" after a true claim) and lets a revising strategy
 * (confidence_weighted) take it back.  diffusion_lab/sampling.py does it in two places, mirrored
 * here and called by sampler.js's generate():
 *   - revisable_slots: the given text positions (anchor excluded) are prompt tokens, never [MASK];
 *     they join the free region (fixed = fixed & ~revisable) but start decoded, not masked;
 *   - start_state: their confidence is the model's probability of the given token with those
 *     slots masked (one extra forward pass), as if the sampler had decoded them itself:
 *         conf^i = softmax(logp(. | z with the revisable slots masked))_{x^i}   (float64)
 * Every other free slot starts masked with confidence 0, as without revisable tokens.
 */
(function (root) {
  "use strict";

  /* A message for bad revisable positions (sampling.revisable_slots), or null. */
  function check(revisable, promptLength, length) {
    if (!Array.isArray(revisable)) return `revisable must be a list of text positions (got ${JSON.stringify(revisable)}).`;
    for (const i of revisable) {
      if (!Number.isInteger(i) || i < 0 || i >= length) return `revisable position ${i} is outside the text (0..${length - 1}).`;
      if (i >= promptLength) return `revisable position ${i} is a [MASK] slot: revisable marks given prompt tokens.`;
    }
    return null;
  }

  /* Mark the revisable slots free and decoded, and give them the start confidence (in place).
   * x, region, masked, conf: the (B, L) arrays of generate(); returns the passes spent (0 or 1). */
  async function startState(forward, spec, revisable, arrays) {
    const { x, region, masked, conf, B, L } = arrays;
    if (!revisable.length) return 0;
    const V = spec.vocab.length, probe = Int32Array.from(x);
    for (let b = 0; b < B; b++) {
      for (const i of revisable) {
        const j = b * L + 1 + i;
        region[j] = 1;
        masked[j] = 0;
        probe[j] = spec.special.mask;
      }
    }
    const logp = await forward(probe, B, L); // (B, L, V)
    for (let b = 0; b < B; b++) {
      for (const i of revisable) {
        const j = b * L + 1 + i;
        let max = -Infinity, sum = 0; // softmax in float64, as start_state's .double()
        for (let v = 0; v < V; v++) max = Math.max(max, logp[j * V + v]);
        for (let v = 0; v < V; v++) sum += Math.exp(logp[j * V + v] - max);
        conf[j] = Math.exp(logp[j * V + x[j]] - max) / sum;
      }
    }
    return 1;
  }

  root.DLLiveRevise = { check, startState };
})(typeof window !== "undefined" ? window : globalThis);

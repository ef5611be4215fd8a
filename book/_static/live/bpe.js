/* diffusion-lab live: GPT-2's byte-level BPE in plain JavaScript (encode, decode, token text).
 *
 * The tokenizer of the question-answering models (diffusion_lab/tokenization.train_tokenizer)
 * exported by diffusion_lab/export/bpe.py as spec.vocab, spec.merges ("a b" per line, rank =
 * line number) and spec.pattern (the byte-level pre-tokenizer's regular expression).  Encoding:
 *   1. split the text with spec.pattern (letters, digits, symbols, each after an optional space);
 *   2. map every UTF-8 byte of a piece to one printable symbol (bytesToUnicode: " " -> "Ġ");
 *   3. repeatedly join the adjacent pair with the lowest merge rank until none has a rule.
 * export/bpe.py's encode is the same algorithm in Python; tests/test_live_qa.py compares this file
 * with the tokenizers library on every question of chapter 8 and on edge cases.
 * Special tokens ("[MASK]", "[EOS]", ...) typed by the reader are refused (reported as unknown):
 * the Python tokenizer would turn "[MASK]" into a slot to fill, not text.
 */
(function (root) {
  "use strict";

  // GPT-2's table: printable bytes map to themselves, the other 68 to U+0100.. in byte order
  function bytesToUnicode() {
    const keep = (b) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const table = new Array(256);
    let extra = 0;
    for (let b = 0; b < 256; b++) table[b] = String.fromCharCode(keep(b) ? b : 256 + extra++);
    return table;
  }

  // built once per exported model and kept on the spec
  function prepare(spec) {
    if (spec._bpe) return spec._bpe;
    const byteToSym = bytesToUnicode();
    const symToByte = new Map(byteToSym.map((s, b) => [s, b]));
    const ranks = new Map(spec.merges.map((m, r) => [m, r])); // "a b" -> rank
    const index = new Map(spec.vocab.map((t, i) => [t, i]));
    const special = new Set([...Object.values(spec.special), ...spec.banned].filter((i) => i != null)
      .map((i) => spec.vocab[i]));
    const pattern = new RegExp(spec.pattern, "gu"); // \p{L}, \p{N} need the u flag
    return (spec._bpe = { byteToSym, symToByte, ranks, index, special, pattern });
  }

  // step 3 on one piece (an array of symbols): the merges, lowest rank first, left to right
  function merge(word, ranks) {
    while (word.length > 1) {
      let best = Infinity, pair = null;
      for (let i = 0; i + 1 < word.length; i++) {
        const r = ranks.get(word[i] + " " + word[i + 1]);
        if (r !== undefined && r < best) { best = r; pair = [word[i], word[i + 1]]; }
      }
      if (pair === null) break;
      const out = [];
      for (let i = 0; i < word.length; i++) {
        if (i + 1 < word.length && word[i] === pair[0] && word[i + 1] === pair[1]) {
          out.push(pair[0] + pair[1]);
          i++;
        } else out.push(word[i]);
      }
      word = out;
    }
    return word;
  }

  /* text -> {ids, unknown}: unknown lists the special tokens found in the text (refused) */
  function encode(spec, text) {
    const t = prepare(spec);
    const unknown = [...t.special].filter((s) => text.includes(s));
    const ids = [];
    const utf8 = new TextEncoder();
    for (const [piece] of text.matchAll(t.pattern)) {
      const word = Array.from(utf8.encode(piece), (b) => t.byteToSym[b]);
      for (const sym of merge(word, t.ranks)) {
        const id = t.index.get(sym);
        if (id === undefined) unknown.push(sym); // a merge whose result is not in the vocabulary
        else ids.push(id);
      }
    }
    return { ids, unknown: Array.from(new Set(unknown)) };
  }

  /* ids -> text: special tokens as their names, the others' symbols back to UTF-8 bytes */
  function decode(spec, ids) {
    const t = prepare(spec);
    let out = "", bytes = [];
    const flush = () => { out += new TextDecoder().decode(Uint8Array.from(bytes)); bytes = []; };
    for (const id of ids) {
      const token = spec.vocab[id];
      if (t.special.has(token)) { flush(); out += token; continue; }
      for (const sym of token) bytes.push(t.symToByte.get(sym));
    }
    flush();
    return out;
  }

  /* what one token shows in the panel: its text (a space stays a space) */
  function tokenText(spec, id) {
    return decode(spec, [id]);
  }

  root.DLLiveBPE = { bytesToUnicode, merge, encode, decode, tokenText };
})(typeof window !== "undefined" ? window : globalThis);

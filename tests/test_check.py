import datetime as dt
from pathlib import Path

from click.testing import CliRunner
from tests_support import REAL_CORPUS

from kb.check import check_corpus
from kb.cli import main

GOOD = """---
title: 年报的基本要求
licences: [vats]
topics: [annual-report]
sources:
  - name: 《电信业务经营许可管理办法》（工业和信息化部令第42号）
    url: https://www.lawfaq.cn/law/27-2071-5.html
updated: 2026-11-28
---

持证企业每年第一季度报送上一年度的经营信息。

## 没报的后果

限期内仍不补报的，会被列入电信业务经营不良名单。
"""


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def messages(root: Path) -> list[str]:
    problems, _ = check_corpus(root, today=dt.date(2026, 11, 28))
    return [str(p) for p in problems]


def test_the_real_corpus_is_clean():
    problems, count = check_corpus(REAL_CORPUS)
    assert count >= 30
    assert [str(p) for p in problems] == []


def test_a_good_document_passes(tmp_path):
    write(tmp_path, "a.md", GOOD)
    assert messages(tmp_path) == []


def test_front_matter_problems_name_file_and_line(tmp_path):
    bad = GOOD.replace("licences: [vats]", "licences: [vats, mobile-game]").replace(
        "topics: [annual-report]", "topics: [annual-report]\ncolour: red"
    ).replace("updated: 2026-11-28\n", "")
    path = write(tmp_path, "a.md", bad)
    out = messages(tmp_path)
    assert f"{path}:3: unknown licence 'mobile-game'" in "\n".join(out)
    assert f"{path}:5: unknown front matter field 'colour'" in "\n".join(out)
    assert f"{path}:1: missing front matter field 'updated'" in out


def test_duplicate_titles_no_sources_and_no_front_matter(tmp_path):
    write(tmp_path, "a.md", GOOD)
    write(tmp_path, "b.md", GOOD)
    write(tmp_path, "c.md", GOOD.replace("title: 年报的基本要求", "title: 另一个").split("sources:")[0] + "updated: 2026-11-28\n---\n\n正文。\n")
    write(tmp_path, "d.md", "# 没有前置信息\n\n正文。\n")
    out = "\n".join(messages(tmp_path))
    assert "b.md:2: duplicate title, also used by a.md" in out
    assert "c.md:1: missing front matter field 'sources'" in out
    assert "d.md:1: no YAML front matter" in out


def test_body_problems(tmp_path):
    body = GOOD + "\n## 空的小节\n\n## 联系我们\n\n" + "咨询请拨打13812345678或400-123-4567，微信号：abc12345，邮箱 a@b.cn。\n"
    body += "详情见 https://example.com/ad 。\n"
    body += "呼叫中心證續期要提前。\n"
    body += "乱码锟斤拷出现了。\n"
    body += "很长" * 200 + "。\n"
    path = write(tmp_path, "a.md", body)
    out = "\n".join(messages(tmp_path))
    assert f"{path}:17: empty section '空的小节'" in out
    for what in ("phone number '13812345678'", "e-mail address", "WeChat/QQ id", "URL 'https://example.com/ad'",
                 "traditional characters", "mojibake", "paragraph of 401 characters"):
        assert what in out
    # the URL in sources is allowed; a years-and-amounts line is not a phone number
    assert "lawfaq" not in out
    write(tmp_path, "b.md", GOOD.replace("年报的基本要求", "其他") + "\n2017年修订后注册资本100万元，审查60日，95字头号码。\n")
    assert not [m for m in messages(tmp_path) if "b.md" in m]


def test_invalid_utf8_is_reported_with_its_line(tmp_path):
    (tmp_path / "a.md").write_bytes(GOOD.encode("utf-8") + "第二行\n".encode("gbk"))
    assert any(":16: invalid UTF-8" in m for m in messages(tmp_path))


def test_cli_exit_codes(tmp_path):
    write(tmp_path, "a.md", GOOD)
    runner = CliRunner()
    ok = runner.invoke(main, ["check", "--corpus", str(tmp_path)])
    assert ok.exit_code == 0
    write(tmp_path, "b.md", GOOD.replace("[vats]", "[nope]").replace("年报的基本要求", "另一篇"))
    bad = runner.invoke(main, ["check", "--corpus", str(tmp_path)])
    assert bad.exit_code == 1 and "b.md:3: unknown licence 'nope'" in bad.output
    missing = runner.invoke(main, ["check", "--corpus", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_a_question_may_name_the_section_that_answers_it(tmp_path):
    anchored = GOOD.replace(
        "updated: 2026-11-28\n",
        "updated: 2026-11-28\nquestions:\n  - 年报什么时候报\n  - q: 年报没报会怎样\n    section: 没报的后果\n",
    )
    write(tmp_path, "a.md", anchored)
    assert messages(tmp_path) == []


def test_a_section_that_is_not_a_heading_is_reported_on_its_line(tmp_path):
    bad = GOOD.replace(
        "updated: 2026-11-28\n",
        "updated: 2026-11-28\nquestions:\n  - q: 年报没报会怎样\n    section: 不报的后果\n  - {q: 年报, colour: red}\n",
    )
    path = write(tmp_path, "a.md", bad)
    out = messages(tmp_path)
    assert out[0].startswith(f"{path}:10: question '年报没报会怎样': section '不报的后果' is not a heading")
    assert "copy the heading line's text" in out[0]
    assert any("each a non-empty string or {q: question, section: heading}" in m for m in out[1:])


def test_english_keys_are_checked_like_chinese_ones_and_must_be_english(tmp_path):
    english = GOOD.replace(
        "updated: 2026-11-28\n",
        "updated: 2026-11-28\nquestions_en:\n  - q: What happens if we skip the annual report?\n    section: 没报的后果\n"
        "  - When is the annual report due?\n",
    )
    write(tmp_path, "a.md", english)
    assert messages(tmp_path) == []
    bad = english.replace("    section: 没报的后果\n", "    section: 不报的后果\n").replace("When is the", "When is 年报")
    path = write(tmp_path, "a.md", bad)
    out = messages(tmp_path)
    assert out[0] == (f"{path}:10: question 'What happens if we skip the annual report?': section '不报的后果' is not "
                      "a heading of this document; copy the heading line's text without the #s")
    assert out[1] == (f"{path}:12: question 'When is 年报 annual report due?' in 'questions_en' has Chinese characters; "
                      "write it in English, or move a Chinese key to 'questions'")
    assert len(out) == 2


def test_english_keys_cover_every_section_the_chinese_keys_name(tmp_path):
    both = GOOD.replace(
        "updated: 2026-11-28\n",
        "updated: 2026-11-28\nquestions:\n  - q: 年报没报会怎样\n    section: 没报的后果\n"
        "questions_en:\n  - When is the annual report due?\n",
    )
    path = write(tmp_path, "a.md", both)
    assert messages(tmp_path) == [f"{path}:12: section '没报的后果' has Chinese keys but no English one in "
                                  "'questions_en'; add - {q: <the question in English>, section: 没报的后果}"]
    write(tmp_path, "a.md", both.replace("  - When is the annual report due?\n",
                                         "  - q: What if we skip the annual report?\n    section: 没报的后果\n"))
    assert messages(tmp_path) == []
    # a document without English keys is not asked for them
    write(tmp_path, "a.md", both.split("questions_en:")[0] + "---" + both.split("---", 2)[2])
    assert messages(tmp_path) == []


def test_a_substantive_section_without_a_key_is_reported(tmp_path):
    long_section = "\n## 补报以后\n\n补报后向发证机关申请移出不良名单；移出以前办理续期，很可能因为名单记录而不被批准，所以要先补报、再移出、最后续期，并留好补报和移出的记录备查。\n"
    faq_heading = "\n## 年报漏了还能补吗？\n\n" + "可以补报，但会留下记录，限期内仍不补报的会被列入不良名单，影响后面的续期。" * 2 + "\n"
    pointer = "\n## 其他\n\n名单的细节见讲名单的文档。\n"
    path = write(tmp_path, "a.md", GOOD + long_section + faq_heading + pointer)
    out = messages(tmp_path)
    # the long section is reported on its heading line; the short one, the question heading and the pointer are not
    assert out == [f"{path}:17: section '补报以后' has no 'questions' key; add one in users' words: "
                   "- {q: <a question it answers>, section: 补报以后}"]
    keyed = GOOD.replace("updated: 2026-11-28\n", "updated: 2026-11-28\nquestions:\n  - q: 补报后多久能续期\n    section: 补报以后\n")
    write(tmp_path, "a.md", keyed + long_section + faq_heading + pointer)
    assert messages(tmp_path) == []
    # a key naming a ### sub-section covers its ## section
    nested = keyed.replace("section: 补报以后", "section: 移出名单") + "\n## 补报以后\n\n### 移出名单\n\n" + long_section.split("\n\n")[1] + "\n"
    write(tmp_path, "a.md", nested)
    assert messages(tmp_path) == []

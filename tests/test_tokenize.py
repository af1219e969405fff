import pytest

from kb.tokenize import Tokenizer


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer()


def test_domain_words_and_their_subwords(tok: Tokenizer):
    tokens = tok.tokens("增值电信业务经营许可证应当提前90日向原发证机关申请")
    for word in ("增值电信业务经营许可证", "经营许可证", "许可证", "原发证机关", "发证机关", "应当"):
        assert word in tokens
    assert "呼叫中心" in tok.tokens("呼叫中心证续期")


def test_stopwords_dropped_but_rule_words_kept(tok: Tokenizer):
    tokens = tok.tokens("我们的证是否必须按照规定的要求办理呢")
    assert "的" not in tokens and "呢" not in tokens and "我们" not in tokens
    for word in ("必须", "规定", "要求"):
        assert word in tokens
    # Question frames users wrap a question in carry no topic: a passage does not have to match
    # them, so they no longer lower a question's coverage (and its confidence).
    frames = tok.tokens("是不是要交满三个月才能续，到底能不能续，有没有宽限期")
    assert not {"是不是", "才能", "到底", "能不能", "有没有"} & set(frames) and "宽限期" in frames


def test_traditional_and_fullwidth_are_normalised(tok: Tokenizer):
    assert tok.tokens("續期被駁回") == tok.tokens("续期被驳回")
    assert "90" in tok.tokens("提前９０日")
    assert "icp" in tok.tokens("ＩＣＰ許可證")


def test_query_expansion_groups_synonyms(tok: Tokenizer):
    groups = tok.query_terms("续证被拒了").groups
    renew = next(g for g in groups if "续证" in g)
    assert {"续期", "延续", "换证"} <= set(renew)
    assert any("驳回" in g and "被拒" in g for g in groups)
    assert Tokenizer(query_expansion=False).query_terms("续证").groups == (("续证",),)


def test_a_licence_name_is_one_query_group_with_its_sub_words(tok: Tokenizer):
    groups = tok.query_terms("增值电信业务经营许可证的续期申请").groups
    licence = [g for g in groups if "增值电信业务经营许可证" in g]
    assert len(licence) == 1 and {"电信", "增值", "经营许可证", "许可证"} <= set(licence[0])
    assert licence[0][0] == "增值电信业务经营许可证"
    assert not any("电信" in g for g in groups if g is not licence[0])
    assert len(groups) == 3  # the licence, 续期, 申请
    # Other long words keep a group per sub-word: 注册资本 is also 注册 and 资本.
    plain = tok.query_terms("注册资本不够").groups
    assert any("注册" in g and "注册资本" not in g for g in plain)


def test_english_words_are_glossed_with_the_corpus_form_of_their_group(tok: Tokenizer):
    # The first member of a synonym group is the corpus's word: renewing -> 续期, fees -> 费用.
    assert tok.chinese_gloss("Are there fees for renewing an ICP licence? Renewal fees?") == ["费用", "续期", "许可证"]
    assert tok.chinese_gloss("续证要交费吗") == []  # Chinese words are not glossed
    assert Tokenizer(query_expansion=False).chinese_gloss("renewal fees") == []


def test_oov_bigrams_cover_runs_of_single_characters():
    tok = Tokenizer(oov_bigrams=True)
    grams = tok._oov_bigrams(["证", "快", "过期", "a", "b"])
    assert grams == ["证快"]


def test_fingerprint_records_what_shapes_tokens(tok: Tokenizer):
    fp = tok.fingerprint
    assert fp["jieba"] and set(fp["files"]) == {"userdict", "stopwords", "synonyms", "vocabulary"}
    assert Tokenizer(oov_bigrams=True).fingerprint != fp

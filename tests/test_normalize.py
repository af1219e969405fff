from kb.normalize import clean, normalize, to_halfwidth, to_simplified


def test_traditional_becomes_simplified():
    assert to_simplified("呼叫中心證續期被駁回，說材料不齊") == "呼叫中心证续期被驳回，说材料不齐"


def test_fullwidth_digits_letters_and_space_become_halfwidth():
    assert to_halfwidth("２０２７年３月１５日　ＩＣＰ") == "2027年3月15日 ICP"


def test_normalize_lowercases_ascii_and_keeps_chinese_punctuation():
    assert normalize("ＩＣＰ證。") == "icp证。"


def test_clean_drops_control_characters_nul_and_lone_surrogates():
    assert clean("a\x00b\x07c\ud800d\u200be\nf") == "abcde\nf"

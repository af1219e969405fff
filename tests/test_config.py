"""Configuration: one Settings, layered defaults -> kb.toml -> KB_* env -> overrides, all documented."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests_support import ROOT

from kb.config import Settings, load_settings, setting_names
from kb.errors import ConfigError


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name in setting_names() if f"`KB_{name.upper()}`" not in readme]
    assert not missing, f"settings missing from the README's settings table: {missing}"


def test_layers_apply_in_order(tmp_path: Path):
    toml = tmp_path / "kb.toml"
    toml.write_text('port = 8000\nrrf_k = 7\nhost = "0.0.0.0"\n', encoding="utf-8")
    s = load_settings({"port": 9000}, env={"KB_RRF_K": "9"}, toml_path=toml)
    assert (s.host, s.rrf_k, s.port) == ("0.0.0.0", 9, 9000)
    assert load_settings(env={}, toml_path=tmp_path / "absent.toml") == Settings()


def test_bad_values_say_what_is_wrong(tmp_path: Path):
    with pytest.raises(ConfigError, match="KB_PORT|port"):
        load_settings(env={"KB_PORT": "eighty"}, toml_path=tmp_path / "absent.toml")
    toml = tmp_path / "kb.toml"
    toml.write_text("prot = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(env={}, toml_path=toml)
    toml.write_text("port = [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(env={}, toml_path=toml)
    with pytest.raises(ConfigError, match="Unknown setting"):
        load_settings({"nope": 1}, env={}, toml_path=tmp_path / "absent.toml")

"""The playground's message catalogues: one per language, the same keys, every key the page uses."""

from __future__ import annotations

import json
import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[1] / "src" / "mlplab" / "web" / "static"


def catalogue(language: str) -> dict[str, str]:
    return json.loads((STATIC / "i18n" / f"{language}.json").read_text(encoding="utf-8"))


def test_the_catalogues_have_the_same_keys_and_placeholders():
    english, korean = catalogue("en"), catalogue("ko")
    assert sorted(english) == sorted(korean), set(english) ^ set(korean)
    for key in english:
        assert set(re.findall(r"\{\w+\}", english[key])) == set(re.findall(r"\{\w+\}", korean[key])), key
        assert korean[key].strip(), key


def test_every_key_the_page_uses_is_in_the_catalogue():
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    scripts = "".join(path.read_text(encoding="utf-8") for path in STATIC.glob("*.js"))
    used = set(re.findall(r'data-i18n(?:-title)?="([\w.-]+)"', html)) | set(re.findall(r'\bt\("([\w.-]+)"', scripts))
    from mlplab.data import GENERATORS

    used |= {f"dataset.{name}" for name in GENERATORS} | {"tip.pause"}
    assert used - set(catalogue("en")) == set()


def test_korean_uses_the_tutorials_terms():
    korean = catalogue("ko")
    assert korean["heading.network"] == "은닉층" and korean["label.activation"] == "활성화 함수"
    assert korean["label.lr"] == "학습률" and korean["explain.backward"].startswith("역전파")
    assert "가중치" in korean["hover.weight"] and "편향" in korean["hover.bias"]

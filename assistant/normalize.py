"""Input normalisation: what users type (全角, 繁體, stray spaces) → one canonical Simplified form."""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import opencc

_converter = opencc.OpenCC("t2s")
_CJK = r"\u3400-\u9fff\uf900-\ufaff"
_SPACE_BETWEEN_CJK = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")
_SPACES = re.compile(r"\s+")
# NFKC turns full-width ASCII into half-width but also Chinese punctuation into ASCII; keep the latter Chinese.
_KEEP = {"，": "，", "。": "。", "？": "？", "！": "！", "：": "：", "；": "；", "（": "（", "）": "）"}
# Words the t2s table leaves in a form the notice does not use.
_AFTER_T2S = {"証": "证", "資格": "资格", "甚麼": "什么", "麽": "么", "囉": "啰"}

MAX_QUESTION_CHARS = 2000


class InputError(ValueError):
    """The question cannot be asked as it is (empty, too long, not text)."""


@lru_cache(maxsize=4096)
def normalize(text: str) -> str:
    """NFKC width folding, 繁→简, spaces between Chinese characters removed, runs of space collapsed."""
    out = []
    for ch in text:
        out.append(_KEEP.get(ch) or unicodedata.normalize("NFKC", ch))
    folded = "".join(out)
    simplified = _converter.convert(folded)
    for old, new in _AFTER_T2S.items():
        simplified = simplified.replace(old, new)
    simplified = _SPACE_BETWEEN_CJK.sub("", simplified)
    simplified = simplified.replace("?", "？").replace("!", "！")
    return _SPACES.sub(" ", simplified).strip()


def validate_question(question: object) -> str:
    if not isinstance(question, str):
        raise InputError("question must be a string")
    if not question.strip():
        raise InputError("question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise InputError(f"question is longer than {MAX_QUESTION_CHARS} characters")
    return question

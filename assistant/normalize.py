"""Input normalisation: what users type (全角, 繁體 with Taiwan words, written Cantonese, stray spaces) → one canonical
Simplified Mandarin form."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import opencc

from .records import Turn

_converter = opencc.OpenCC("t2s")
# Taiwan and Hong Kong words for things the annex names in mainland words (OpenCC's tw2sp does this too, but it
# also turns 批次 into 批量, 文件 into 文档 and 什么 into 什幺: only these words are taken)
_REGIONAL = {"资讯": "信息", "网路": "网络", "晶片": "芯片", "软体": "软件", "硬体": "硬件", "人资": "人力资源"}
# What speech recognition writes for the notice's key words when a question is dictated (same syllables, other
# characters): 推出 for 退出, 正书 for 证书, 作费 for 作废 … Only forms that are no word of the notice's own; a lone 正
# after a job name (保育员正, 电工正) is the certificate unless it begins a word (正在, 正式 …).
_HEARD = {"推出": "退出", "退处": "退出", "正书": "证书", "作费": "作废", "做废": "作废", "有笑": "有效", "披次": "批次",
          "第一披": "第一批", "第二披": "第二批", "头一披": "头一批", "见定": "鉴定", "木录": "目录", "准如": "准入",
          "等级正": "等级证", "资格正": "资格证"}
_HEARD_CERT = re.compile(r"(?<=[工员师])正(?![在式常确好规当面经宗])")
_CJK = r"\u3400-\u9fff\uf900-\ufaff"
_SPACE_BETWEEN_CJK = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")
_SPACES = re.compile(r"\s+")
# NFKC turns full-width ASCII into half-width but also Chinese punctuation into ASCII; keep the latter Chinese.
_KEEP = {"，": "，", "。": "。", "？": "？", "！": "！", "：": "：", "；": "；", "（": "（", "）": "）"}
# Words the t2s table leaves in a form the notice does not use.
_AFTER_T2S = {"証": "证", "資格": "资格", "甚麼": "什么", "麽": "么", "囉": "啰"}

MAX_QUESTION_CHARS = 2000

# Cantonese written words → Mandarin (applied after 繁→简, only to a text with Cantonese particles in it, so that
# 系统 or 仲裁 in a Mandarin question are never touched): the words people write, not the notice's domain (点检, 点钞,
# 点菜 are words of their own: 設備點檢員 stays 设备点检员).
_CANTONESE_MARK = re.compile("[嘅咗冇唔喺嚟啲咩乜畀嘢佢哋咁噉睇搵揾嗰攞㗎]|系咪|点解|边个|边啲|而家|依家")
_CANTONESE = [(re.compile(a), b) for a, b in (
    ("系唔系|系咪", "是不是"), ("唔系", "不是"), ("有冇", "有没有"), ("(?<![关联体维派世])系(?![统列数])", "是"),
    ("乜嘢|乜", "什么"), ("咩", "什么"), ("点解", "为什么"), ("点样|点(?![检钞菜])", "怎么"), ("边个", "哪个"), ("边啲", "哪些"),
    ("边度", "哪里"), ("边", "哪"), ("几时", "什么时候"), ("几多", "多少"), ("仲(?!裁)", "还"), ("而家|依家", "现在"),
    ("佢哋", "他们"), ("我哋", "我们"), ("你哋", "你们"), ("佢", "他"), ("哋", "们"), ("呢个", "这个"), ("呢份", "这份"),
    ("呢啲", "这些"), ("嗰", "那"), ("嘅", "的"), ("咗", "了"), ("冇", "没有"), ("唔", "不"), ("喺", "在"), ("嚟", "来"),
    ("啲", "些"), ("畀", "给"), ("睇", "看"), ("搵|揾", "找"), ("攞", "拿"), ("咁|噉", "这样"), ("㗎", ""),
)]


def mandarin(text: str) -> str:
    """Cantonese written words in a (simplified) text as Mandarin; a text without Cantonese particles unchanged."""
    if not _CANTONESE_MARK.search(text):
        return text
    for pattern, word in _CANTONESE:
        text = pattern.sub(word, text)
    return text


class InputError(ValueError):
    """The question cannot be asked as it is (empty, too long, not text)."""


# A space between Chinese characters: inside a word split by a typo (电 工, 美 容 师) when a run beside it is at most
# two characters, joined; between two longer runs it is a phrase boundary people type or dictate instead of a comma
# (眼镜店给人验光 眼镜验光员), kept as one, so that no name is glued to the words before it.
_CJK_GAP = re.compile(rf"([{_CJK}]+)\s+(?=([{_CJK}]+))")
_SHORT_RUN = 2


def _join_or_split(m: re.Match) -> str:
    left, right = m.group(1), m.group(2)
    return left if min(len(left), len(right)) <= _SHORT_RUN else left + "，"


@lru_cache(maxsize=4096)
def normalize(text: str) -> str:
    """NFKC width folding, 繁→简, what dictation mishears of the key words, spaces between Chinese characters
    removed, runs of space collapsed."""
    out = []
    for ch in text:
        out.append(_KEEP.get(ch) or unicodedata.normalize("NFKC", ch))
    folded = "".join(out)
    simplified = _converter.convert(folded)
    for old, new in (*_AFTER_T2S.items(), *_REGIONAL.items()):
        simplified = simplified.replace(old, new)
    simplified = mandarin(simplified)
    for old, new in _HEARD.items():
        simplified = simplified.replace(old, new)
    simplified = _HEARD_CERT.sub("证", simplified)
    simplified = _CJK_GAP.sub(_join_or_split, simplified)
    simplified = simplified.replace("?", "？").replace("!", "！")
    return _SPACES.sub(" ", simplified).strip()


# Text hygiene: the one check every door runs before anything else (CLI argument, --jsonl line, Python API, HTTP,
# Gradio). Lone surrogates cannot be encoded as UTF-8 and would break every answer that echoes them, so they are
# refused; control characters carry no meaning in a question and are removed (tab and CR become spaces, LF stays).
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u2028\u2029\ufeff]")
MAX_ID_CHARS = 200


@dataclass(frozen=True)
class HistoryLimits:
    """How much conversation one question may carry (Config.max_history_turns / max_history_chars)."""

    turns: int = 50
    chars: int = 60_000


def latin_share(text: str) -> float:
    """The share of latin letters among the letters and Chinese characters of a text (0 when it has neither)."""
    latin = sum(1 for c in text if "a" <= c.lower() <= "z")
    han = sum(1 for c in text if "\u4e00" <= c <= "\u9fff")
    return latin / (latin + han) if latin + han else 0.0


def clean_text(text: object, what: str = "question") -> str:
    """`text` with control characters removed; InputError if it is not text or holds a lone surrogate."""
    text = refuse_surrogates(text, what)
    if _CONTROL.search(text):
        text = _CONTROL.sub("", text.replace("\t", " ").replace("\r", " "))
    return text


def refuse_surrogates(text: object, what: str) -> str:
    """`text` unchanged if it is a str that UTF-8 can encode; InputError naming the first bad character if not."""
    if not isinstance(text, str):
        raise InputError(f"{what} must be a string")
    bad = _SURROGATE.search(text)
    if bad:
        code = ord(bad.group())
        if 0xDC80 <= code <= 0xDCFF:  # how Python carries undecodable bytes (surrogateescape)
            raise InputError(f"{what} is not valid UTF-8 (byte 0x{code - 0xDC00:02X} at character {bad.start() + 1})")
        raise InputError(f"{what} contains a lone surrogate (U+{code:04X}) at character {bad.start() + 1}; "
                         "send valid Unicode text")
    return text


def validate_question(question: object) -> str:
    """The question as it may be answered: clean text, not empty, not too long. Raises InputError."""
    question = clean_text(question, "question")
    if not question.strip():
        raise InputError("question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise InputError(f"question is longer than {MAX_QUESTION_CHARS} characters")
    return question


def validate_id(value: object) -> str | int | None:
    """The caller's id, echoed back: a string, an integer or null."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if not isinstance(value, str):
        raise InputError("id must be a string, an integer or null")
    value = refuse_surrogates(value, "id")  # echoed back as given: only what cannot be encoded is refused
    if len(value) > MAX_ID_CHARS:
        raise InputError(f"id is longer than {MAX_ID_CHARS} characters")
    return value


def validate_history(history: object, limits: HistoryLimits = HistoryLimits()) -> list[Turn]:
    """Earlier turns as typed Turns, capped in turns and characters; InputError names the first bad entry."""
    if history is None:
        return []
    if isinstance(history, (str, bytes, dict)) or not isinstance(history, (list, tuple)):
        raise InputError('history must be a list of {"role": "user"|"assistant", "content": "..."} objects')
    if len(history) > limits.turns:
        raise InputError(f"history has {len(history)} turns; at most {limits.turns} are accepted "
                         "(send the most recent turns only)")
    turns, total = [], 0
    for i, entry in enumerate(history):
        if isinstance(entry, Turn):
            entry = entry.model_dump()
        if not isinstance(entry, dict):
            raise InputError(f'history[{i}] must be an object {{"role": "user"|"assistant", "content": "..."}}')
        if entry.get("role") not in ("user", "assistant"):
            raise InputError(f"history[{i}].role must be 'user' or 'assistant'")
        content = clean_text(entry.get("content"), f"history[{i}].content")
        total += len(content)
        if total > limits.chars:
            raise InputError(f"history is longer than {limits.chars} characters; send the most recent turns only")
        turns.append(Turn(role=entry["role"], content=content))
    return turns


@dataclass(frozen=True)
class AskInput:
    question: str
    history: list[Turn]
    id: str | int | None


def validate_request(question: object, history: object = None, id: object = None,
                     limits: HistoryLimits = HistoryLimits()) -> AskInput:
    """The one validation of a question with its history and id, run at every door before anything else."""
    return AskInput(question=validate_question(question), history=validate_history(history, limits),
                    id=validate_id(id))

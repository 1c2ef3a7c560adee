"""The small text facts every reader of generated or written Chinese needs, written once: numerals, negation
words, citation markers and date patterns.

Used by `assistant.checks` (the sentence checks), `assistant.answer_check` (the answer checker),
`assistant.prompting` (the prompt) and `assistant.generate` (the answerer). Before this module they were
written two to five times and differed (the negation words most of all: one list had 不会/不再, another 无需/并不,
a third 停止)."""
from __future__ import annotations

import re

# ---- numerals ---------------------------------------------------------------------------------------------

CN_DIGITS = "零一二三四五六七八九"
# Single Chinese numerals as ordinals are written in the notice (第二条, 第一批, 首批).
CN_NUM = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10,
          "首": 1}


def chinese_number(n: int) -> str:
    """1–99 in Chinese numerals as dates are written: 9 → 九, 12 → 十二, 30 → 三十, 31 → 三十一."""
    tens, ones = divmod(n, 10)
    if not tens:
        return CN_DIGITS[ones]
    return f"{CN_DIGITS[tens] if tens > 1 else ''}十{CN_DIGITS[ones] if ones else ''}"


def numeral_value(word: str) -> int | None:
    """A numeral as written in 第…条 / 第…批 / 第…项: digits, 一…十, 十一…九十九, 首 (None when it is not one)."""
    if word.isdigit():
        return int(word)
    if word in CN_NUM:
        return CN_NUM[word]
    m = re.fullmatch(r"([一二三四五六七八九])?十([一二三四五六七八九])?", word)
    if m:
        return (CN_NUM[m.group(1)] if m.group(1) else 1) * 10 + (CN_NUM[m.group(2)] if m.group(2) else 0)
    return None


DIGITS = re.compile(r"\d+")

# ---- negation ---------------------------------------------------------------------------------------------

# One list of the words that negate what follows them (longest first, so 不属于 is read before 不).
NEGATION_WORDS = ("而不是", "不属于", "并不", "并非", "而非", "不是", "不在", "不再", "不能", "不得", "不可", "不会", "不予",
                  "无需", "不需", "不用", "没有", "停止", "不", "未", "无", "非")
_NEGATION = "|".join(NEGATION_WORDS)
# How far before a word a negation still reaches (不属于第二批 / 不是由人社部 …), stopping at a clause break.
NEGATION_REACH = 3
_NEGATED = {reach: re.compile(rf"(?:{_NEGATION})[^，。；、]{{0,{reach}}}$") for reach in range(0, 6)}


def negated_before(before: str, reach: int = NEGATION_REACH) -> bool:
    """Whether the text just before a word negates it (a negation word within `reach` characters, same clause)."""
    return bool(_NEGATED[min(max(reach, 0), 5)].search(before))


def negated_near(text: str, start: int, window: int = 4) -> bool:
    """Whether a negation word ends within `window` characters before position `start` (for rule words)."""
    before = text[max(0, start - window):start]
    return any(n in before for n in NEGATION_WORDS)


# ---- citation markers -------------------------------------------------------------------------------------

# Any bracketed marker a model or the offline answer writes: [1], [附件第4项], 【第二条】, [来源3].
MARKER = re.compile(r"[\[【]([^\[\]【】\n]{1,40})[\]】]")
MARKER_SPLIT = re.compile(r"[、,，;；/\s]+")
# A run of markers, e.g. [1][2] or [附件第67项][第二条].
MARKER_RUN = re.compile(r"(?:\[[^\[\]]+\])+")
# The labels of the sources as the prompt spells them.
LABEL = r"(?:附件第\d{1,3}项|第[一二三四五六]条|文头|来源\d{1,2})"
PAREN_MARKER = re.compile(rf"[（(]({LABEL}(?:[、,，;；\s]+{LABEL})*)[）)]")
# The one scheme both modes show: [n], n = Citation.marker.
NUMBERED_MARKER = re.compile(r"\[(\d{1,2})\]")
# A sentence's markers after its full stop (…退出目录。[1]) as a model may write them.
TRAILING_MARKERS = re.compile(r"^(.*?)([。！？!?])\s*((?:[\[【][^\[\]【】\n]{1,40}[\]】]\s*)+)$", re.S)


def strip_markers(text: str) -> str:
    return MARKER.sub("", text)


def numbered_marks(numbers) -> str:
    """[1][3] for the numbers given, each once, in order."""
    return "".join(f"[{n}]" for n in dict.fromkeys(numbers))


# ---- dates, items, batches ------------------------------------------------------------------------------------

DATE = re.compile(r"(?:(\d{4})年)?(\d{1,2})月(\d{1,2})日")
ITEM_REF = re.compile(r"(?:附件)?第(\d{1,3})项")
BATCH_WORD = re.compile(r"第([一二三四五六七八九十]|\d{1,3})批|首批|(准入类)")
CLAUSE_REF = re.compile(r"第([一二三四五六七八九十]|\d{1,2})条")
YEAR = re.compile(r"(?<!\d)(19|20)\d{2}(?=年)")


def dates_in(text: str) -> set[tuple[int, int]]:
    """(month, day) of every date in the text (scan spacing removed first by the caller)."""
    return {(int(m.group(2)), int(m.group(3))) for m in DATE.finditer(text)}


def squeeze(text: str) -> str:
    """Scan spacing removed (9 月 30 日 → 9月30日, 14 项 → 14项), for comparing facts."""
    return re.sub(r"\s+", "", text)


def normalise_deadlines(text: str) -> str:
    """9 月 30 日 → 9月30日 (the scan's spacing, or a model copying it)."""
    return re.sub(r"(?<=[\d月])\s+|\s+(?=[\d月日])", "", text)

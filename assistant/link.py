"""Entity linking: which occupations, annex items, departments, batches and clauses a question names.

Exact names and the reviewable alias table (corpus/aliases.csv) come first, longest match wins, so
森林消防员 is never read as 消防员 and 金属材料热处理工 never as 金属热处理工. Only when nothing is found
exactly does a pinyin/one-character-typo match run (电公 → 电工), and its result is marked as fuzzy."""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import jieba
import jieba.posseg as pseg
from pypinyin import lazy_pinyin

from .records import BATCH_1, BATCH_2, BATCH_LICENSED, Corpus

jieba.setLogLevel(60)  # jieba prints its dictionary loading to stderr otherwise

ALIASES_FILE = "aliases.csv"
CUES_FILE = "cues.csv"  # words of a job description that identify an occupation (假牙 → 口腔修复体制作工)
NO_BATCH = "none"  # a batch the notice does not have (第三批 …)

_CN_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_NUM = r"(\d{1,3}|[零一二两三四五六七八九十百]{1,4})"
_ITEM_REF = re.compile(rf"(?:附件\s*)?(?:第\s*{_NUM}\s*项|序号\s*(?:为|是)?\s*{_NUM}|附件\s*(\d{{1,3}})(?!\s*[年月日条批个\d]))")
_CLAUSE_REF = re.compile(rf"第\s*{_NUM}\s*(?:条|款|部分|点)")
_OPENING_REF = re.compile(r"开头|开篇|第一段|首段|导语|前言|引言")
_BATCH_REF = re.compile(
    rf"(?:第\s*{_NUM}\s*批|首批|头一批|{_NUM}\s*批次|批次\s*{_NUM}|batch\s*(\d)|(first|second|third)\s*batch)", re.I
)
# A batch named by its deadline (clause 二): 9月30日前 is the first, 12月31日前 the second.
_DEADLINE_REF = [
    (re.compile(r"(9|九)月\s*(30|三十)\s*[日号]?|(9|九)月底"), BATCH_1),
    (re.compile(r"(12|十二)月\s*(31|三十一)\s*[日号]?|(12|十二)月底"), BATCH_2),
]
_LICENSED_REF = re.compile(r"准入类|准入")
# Words that end like an occupation but name none: never reported as "absent from the annex".
_GENERIC = set(
    "员工 职工 工人 人员 技师 高级技师 高级工 中级工 初级工 技术员 学员 考生 学生 会员 公务员 工作人员 老师 "
    "技能人员 持证者 工作 师傅 技工 用工 打工 务工 员 工 师 "
    "社会 政府 人社 部门 单位 我 你 他 她 这 那".split()
)
_PART_STOPWORDS = set(
    "职业 资格 证书 工作 人员 管理 服务 技术 技能 等级 操作 生产 制造 加工 维修 安装 检验 处理 设备 "
    "我们 你们 这个 那个 什么 哪个 哪一批 第几批 以后 现在 还有 有用 是不是 一批 批次 退出 目录 取消".split()
)
_FILLER = set(
    "职业 技能 等级 这个 那个 什么 我 我的 你 请问 问 想 知道 现在 以后 之前 以前 原来 手里 手上 已经 考 考的 拿 拿到 "
    "听说 听 说 觉得 认为 发现 看到 考取 取得 申请 办理 领取 领 办 查 补 换 问下 问一下 一下 下 想问 咨询 打听 有 有个 一个 那 这 本 张 个 了 还 也 都 和 与 跟 及 或 啥 哪些 哪个 所有 全部 各种 相关 有关 职业资格 水平评价类 "
    "水平 评价 国家 准入类 退出 目录 取消".split()
)
_OCCUPATION_SUFFIX = re.compile(r"^[\u4e00-\u9fff]{1,7}(?:工|师|员|士)$")
_NAME_BEFORE = re.compile(r"([\u4e00-\u9fff]{2,8}?(?:工|师|员|士))(?=证|资格|职业|还|是|的|呢|吗|什么|啥|在|有|会|要|算|能|属|归|哪|第|，|？|。|$)")
_CERT_WORD = re.compile(r"([\u4e00-\u9fff]{2,8}?)(?:资格证书|资格证|证书|执业证|上岗证|资格|证)")


def chinese_number(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    if not text or any(ch not in _CN_DIGITS and ch not in "十百" for ch in text):
        return None
    total, current = 0, 0
    for ch in text:
        if ch == "百":
            total += (current or 1) * 100
            current = 0
        elif ch == "十":
            total += (current or 1) * 10
            current = 0
        else:
            current = _CN_DIGITS[ch]
    return total + current


@dataclass(frozen=True)
class Mentions:
    occupations: tuple[str, ...] = ()  # canonical occupation names, in the order the question names them
    items: tuple[int, ...] = ()  # items named by number or by 职业资格名称 (may be out of range)
    departments: tuple[str, ...] = ()
    batches: tuple[str, ...] = ()  # BATCH_1, BATCH_2, BATCH_LICENSED or NO_BATCH
    clauses: tuple[int, ...] = ()  # explicit 第N条 (may be out of range)
    unknown_names: tuple[str, ...] = ()  # occupation-like words that are not in the annex
    fuzzy: tuple[tuple[str, str], ...] = ()  # (what was typed, occupation it was read as)

    def has_subject(self) -> bool:
        return bool(self.occupations or self.items or self.departments)

    def is_empty(self) -> bool:
        return not (self.has_subject() or self.batches or self.clauses)


@dataclass
class Lexicon:
    """Surface form → what it names. Built from the corpus and the alias table."""

    occupations: dict[str, set[str]] = field(default_factory=dict)  # form → occupation names
    items: dict[str, set[int]] = field(default_factory=dict)  # form → item numbers (职业资格名称)
    departments: dict[str, set[str]] = field(default_factory=dict)  # form → department names

    def add(self, table: dict, form: str, target) -> None:
        form = _fold(form)
        if len(form) >= 2:
            table.setdefault(form, set()).add(target)

    @classmethod
    def from_corpus(cls, corpus: Corpus, aliases_path: Path | None) -> "Lexicon":
        lex = cls()
        for row in corpus.annex_rows:
            lex.add(lex.occupations, row.occupation, row.occupation)
            bare = re.sub(r"[（(][^）)]*[）)]\s*", "", row.occupation)  # (粮油) 仓储管理员 → 仓储管理员
            if bare != row.occupation:
                lex.add(lex.occupations, bare, row.occupation)
                lex.add(lex.occupations, re.sub(r"[\s()（）]", "", row.occupation), row.occupation)
            lex.add(lex.items, row.qualification, row.item)
            for dept in row.departments:
                lex.add(lex.departments, dept, dept)
                short = re.sub(r"^(中华全国|中国|国家)", "", dept)
                if short != dept and len(short) >= 4:
                    lex.add(lex.departments, short, dept)
        # What people call an occupation without its suffix (评茶员 → 评茶, 沼气工 → 沼气), unless the stem is
        # an ordinary word of the notice body or another occupation's name.
        body = "".join(c.text for c in corpus.clauses)
        names = {r.occupation for r in corpus.annex_rows}
        for name in names:
            stem = re.sub(r"(工|员|师)$", "", re.sub(r"[（(][^）)]*[）)]\s*", "", name))
            if stem != name and len(stem) >= 2 and stem not in body and stem not in names:
                lex.add(lex.occupations, stem, name)
        if aliases_path and aliases_path.exists():
            known_occ = {r.occupation for r in corpus.annex_rows}
            known_dept = {d for r in corpus.annex_rows for d in r.departments}
            quals = {r.qualification: r.item for r in corpus.annex_rows}
            with aliases_path.open(encoding="utf-8", newline="") as fh:
                for rec in csv.DictReader(fh):
                    alias, target, kind = rec["alias"].strip(), rec["target"].strip(), rec["kind"].strip()
                    if kind == "occupation" and target in known_occ:
                        lex.add(lex.occupations, alias, target)
                    elif kind == "qualification" and target in quals:
                        lex.add(lex.items, alias, quals[target])
                    elif kind == "department" and target in known_dept:
                        lex.add(lex.departments, alias, target)
        return lex

    def words(self) -> set[str]:
        return set(self.occupations) | set(self.items) | set(self.departments)


def _fold(text: str) -> str:
    """The form used for matching: lower case, no spaces."""
    return re.sub(r"\s+", "", text).lower()


class EntityLinker:
    def __init__(self, corpus: Corpus, aliases_path: Path | None) -> None:
        self.corpus = corpus
        self.lexicon = Lexicon.from_corpus(corpus, aliases_path)
        self.cues: dict[str, set[str]] = {}
        cues_path = aliases_path.with_name(CUES_FILE) if aliases_path else None
        if cues_path and cues_path.exists():
            known = {r.occupation for r in corpus.annex_rows}
            with cues_path.open(encoding="utf-8", newline="") as fh:
                for rec in csv.DictReader(fh):
                    cue, target = _fold(rec["cue"]), rec["target"].strip()
                    if target in known and len(cue) >= 2:
                        self.cues.setdefault(cue, set()).add(target)
        for word in self.lexicon.words():
            jieba.add_word(word, freq=2000)
        self._forms = sorted(
            [(f, "occupation") for f in self.lexicon.occupations]
            + [(f, "item") for f in self.lexicon.items]
            + [(f, "department") for f in self.lexicon.departments],
            key=lambda x: -len(x[0]),
        )
        self._pinyin_forms = [
            (f, lazy_pinyin(f)) for f in self.lexicon.occupations if re.fullmatch(r"[\u4e00-\u9fff]{2,}", f)
        ]
        self._item_count = max(corpus.item_numbers())
        self._exact_names = {_fold(r.occupation) for r in corpus.annex_rows}
        self._name_of_fold = {_fold(r.occupation): r.occupation for r in corpus.annex_rows}

    def run(self, question: str) -> Mentions:
        text = _fold(question)
        occupations: list[tuple[int, str]] = []
        items: list[tuple[int, int]] = []
        departments: list[tuple[int, str]] = []
        taken = [False] * len(text)
        # Words that look like occupation names; a shorter form inside one of them (消防 in 消防设施操作员) is not
        # a mention of that occupation.
        unknown = self._unknown_names(question)
        for form, kind in self._forms:
            start = text.find(form)
            while start != -1:
                end = start + len(form)
                inside_other = kind == "occupation" and form not in self._exact_names and any(
                    form in word and len(word.split(form, 1)[1]) >= 2 and word not in self.lexicon.occupations
                    for word in unknown)
                if not any(taken[start:end]) and not inside_other:
                    for i in range(start, end):
                        taken[i] = True
                    if kind == "occupation":
                        occupations += [(start, name) for name in sorted(self.lexicon.occupations[form])]
                    elif kind == "item":
                        items += [(start, n) for n in sorted(self.lexicon.items[form])]
                    else:
                        departments += [(start, d) for d in sorted(self.lexicon.departments[form])]
                start = text.find(form, end)
        masked = "".join("　" if t else ch for ch, t in zip(text, taken))
        for m in _ITEM_REF.finditer(masked):
            n = chinese_number(next(g for g in m.groups() if g))
            if n is not None:
                items.append((m.start(), n))
        fuzzy: list[tuple[str, str]] = []
        if not (occupations or items or departments or unknown):
            described = self.by_cues(masked)
            fuzzy += described
            occupations += [(0, name) for _, name in described]
        if not (occupations or items or departments):
            partial = self.by_name_parts(masked)
            if partial:
                fuzzy = [partial]
                occupations.append((0, partial[1]))
        if not (occupations or items or departments):
            fuzzy = [(typed, name) for typed, name in self._fuzzy(masked)
                     if not unknown or any(typed in word or word in typed for word in unknown)]
            occupations += [(0, name) for _, name in fuzzy]
        return Mentions(
            occupations=_ordered(occupations),
            items=_ordered(items),
            departments=_ordered(departments),
            batches=self._batches(masked),
            clauses=tuple(n for m in _CLAUSE_REF.finditer(masked) if (n := chinese_number(m.group(1))) is not None)
            + ((0,) if _OPENING_REF.search(masked) else ()),
            unknown_names=() if occupations or items else tuple(
                w for w in unknown if not any(typed in w or w in typed for typed, _ in fuzzy)),
            fuzzy=tuple(fuzzy),
        )

    def _batches(self, text: str) -> tuple[str, ...]:
        found: list[str] = []
        for m in _BATCH_REF.finditer(text):
            word = m.group(0)
            if word in ("首批", "头一批"):
                n = 1
            elif m.group(5):
                n = {"first": 1, "second": 2, "third": 3}[m.group(5).lower()]
            else:
                n = chinese_number(next(g for g in m.groups() if g))
            found.append({1: BATCH_1, 2: BATCH_2}.get(n, NO_BATCH))
        for rx, batch in _DEADLINE_REF:
            if rx.search(text):
                found.append(batch)
        if _LICENSED_REF.search(text):
            found.append(BATCH_LICENSED)
        return tuple(dict.fromkeys(found))

    def by_cues(self, text: str) -> list[tuple[str, str]]:
        """Occupations a job description points at: those with the most cue words in the question (three at most)."""
        hits: dict[str, list[str]] = {}
        for cue, targets in self.cues.items():
            if cue in text:
                for name in targets:
                    hits.setdefault(name, []).append(cue)
        if not hits:
            return []
        best = max(len(v) for v in hits.values())
        chosen = [(name, cues) for name, cues in hits.items() if len(cues) == best]
        if len(chosen) > 3:
            return []
        return [("、".join(sorted(cues, key=text.find)), name) for name, cues in chosen]

    def by_name_parts(self, text: str, among: set[str] | None = None) -> tuple[str, str] | None:
        """An occupation whose name the question spells out in pieces (开起重机装卸货的操作工 → 起重装卸机械操作工).

        Needs two or more words of the question, of two or more characters each, inside one name, covering at
        least half of it, and one best name."""
        words = {w for w in jieba.lcut_for_search(text) if len(w) >= 2 and w not in _PART_STOPWORDS}
        if not words:
            return None
        scored = []
        for name in among or self._exact_names:
            hits = [w for w in words if w in name]
            hits = [w for w in hits if not any(w != o and w in o for o in hits)]  # 人力 inside 人力资源 is one word
            covered = len(set().union(*[set(w) for w in hits])) if hits else 0
            if (len(hits) >= 2 or among) and hits and covered * 2 >= len(name if not among else min(hits, key=len)):
                scored.append((len(hits), covered, name, "、".join(sorted(hits, key=text.find))))
        scored.sort(reverse=True)
        if not scored or (len(scored) > 1 and scored[0][:2] == scored[1][:2]):
            return None
        return scored[0][3], self._name_of_fold.get(scored[0][2], scored[0][2])

    def _fuzzy(self, text: str) -> list[tuple[str, str]]:
        """Typos: the same pinyin (电公 → 电工), or one character off in a name of four or more."""
        syllables = lazy_pinyin(text)
        if len(syllables) != len(text):  # pinyin merges non-Chinese runs; fall back to per-character
            syllables = [lazy_pinyin(ch)[0] if ch.strip() else ch for ch in text]
        starts, pos = set(), 0
        for token in jieba.lcut(text):
            starts.add(pos)
            pos += len(token)
        hits: dict[str, str] = {}
        for form, form_py in sorted(self._pinyin_forms, key=lambda x: -len(x[0])):
            n = len(form)
            for i in range(len(text) - n + 1):
                window = text[i : i + n]
                if i not in starts or window == form:  # an exact occurrence was left out on purpose
                    continue
                same_sound = syllables[i : i + n] == form_py
                same_chars = sum(a == b for a, b in zip(window, form))
                near_sound = n >= 3 and same_chars == n - 1 and all(
                    a == b or _sounds_alike(syllables[i + k], form_py[k]) for k, (a, b) in enumerate(zip(window, form)))
                if (same_sound and (n >= 3 or same_chars >= 1)) or near_sound:
                    if window not in hits and not any(window in w or w in window for w in hits):
                        hits[window] = form
        result = []
        for typed, form in hits.items():
            for name in sorted(self.lexicon.occupations[form]):
                result.append((typed, name))
        return result

    def _unknown_names(self, question: str) -> tuple[str, ...]:
        """Occupation- or certificate-like words the annex does not have (焊工, 心理咨询师, 教师资格 …)."""
        text = _fold(question)
        candidates = [m.group(1) for m in _CERT_WORD.finditer(text) if _ends_in_noun(m.group(1))]
        candidates += [m.group(1) for m in _NAME_BEFORE.finditer(text)]
        candidates += [w for w in jieba.lcut(text) if _OCCUPATION_SUFFIX.match(w)]
        names: list[str] = []
        for candidate in candidates:
            kept: list[str] = []
            for token in reversed(jieba.lcut(candidate)):
                if token in _FILLER or "的" in token or (len(token) > 1 and token in _GENERIC):
                    break
                kept.insert(0, token)
            word = "".join(kept)
            if len(word) >= 2 and word not in _GENERIC and not any(word in n for n in names):
                names = [n for n in names if n not in word] + [word]
        return tuple(names)


def _sounds_alike(a: str, b: str) -> bool:
    """Two syllables a typist confuses: the same initial (磨/模) or the same final (掉/调)."""
    def split(syllable: str) -> tuple[str, str]:
        m = re.match(r"(zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw]?)(.*)", syllable)
        return m.group(1), m.group(2)
    (ia, fa), (ib, fb) = split(a), split(b)
    return a == b or (ia and ia == ib) or (fa and fa == fb)


def _ends_in_noun(text: str) -> bool:
    """Certificate names are nouns (jieba tags 会计 and 驾驶 as verbs, so a two-character verb counts too)."""
    words = list(pseg.lcut(text))
    if not words:
        return False
    last = words[-1]
    return last.flag.startswith("n") or (len(words) == 1 and last.flag == "v" and len(last.word) >= 2)


def _ordered(found: list[tuple[int, object]]) -> tuple:
    return tuple(dict.fromkeys(v for _, v in sorted(found, key=lambda x: x[0])))

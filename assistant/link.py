"""Entity linking: which occupations, annex items, departments, batches and clauses a question names.

Exact names and the reviewable alias table (corpus/aliases.csv) come first, longest match wins, so
森林消防员 is never read as 消防员 and 金属材料热处理工 never as 金属热处理工. Only when nothing is found
exactly does a pinyin/one-character-typo match run (电公 → 电工), and its result is marked as fuzzy."""
from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import jieba

from .parse import CorpusIntegrityError
from .profile import NoticeProfile
from .records import BATCH_1, BATCH_2, BATCH_LICENSED, Corpus
from .words import use_dictionary


ALIASES_FILE = "aliases.csv"
CUES_FILE = "cues.csv"  # words of a job description that identify an occupation (假牙 → 口腔修复体制作工)
# Sector words → annex rows (食品 → items 47–49 …): reviewed rows, and rows seeded from the annex's own names by
# scripts/sectors_from_names.py. An empty occupation is the whole item.
SECTORS_FILE = "sectors.csv"
SECTOR_COLUMNS = ["sector", "item", "occupation", "source"]
NO_BATCH = "none"  # a batch the notice does not have (第三批 …)

_CN_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_NUM = r"(\d{1,3}|[零一二两三四五六七八九十百]{1,4})"
_ITEM_REF = re.compile(rf"(?:附件\s*)?(?:第\s*{_NUM}\s*项|序号\s*(?:为|是)?\s*{_NUM}|附件\s*(\d{{1,3}})(?!\s*[年月日条批个\d]))"
                       r"|(?i:item)s?\s*(?:(?i:no)\.?\s*|#\s*)?(\d{1,3})(?!\d)")  # item 72, Item No. 5 (spaces are folded)
_CLAUSE_REF = re.compile(rf"第\s*{_NUM}\s*(?:条|款|部分|点)")
_OPENING_REF = re.compile(r"开头|开篇|第一段|首段|导语|前言|引言")
_BATCH_REF = re.compile(
    rf"(?:第\s*{_NUM}\s*批|首批|头一批|{_NUM}\s*批次|批次\s*{_NUM}|batch[\s-]*(?:no\.?\s*)?(\d)|(first|second|third)[\s-]*batch|batch[\s-]*(one|two|three)(?![a-z]))", re.I
)
_CN_MONTH = {1: "一", 2: "二", 3: "三", 4: "四", 5: "五", 6: "六", 7: "七", 8: "八", 9: "九", 10: "十", 11: "十一", 12: "十二"}


def _cn(n: int) -> str:
    """30 → 三十, 31 → 三十一 (day numbers as people write them)."""
    tens, ones = divmod(n, 10)
    return ("" if tens == 0 else ("十" if tens == 1 else _CN_MONTH[tens] + "十")) + ("" if ones == 0 else _CN_MONTH[ones])


def deadline_patterns(profile: NoticeProfile | None) -> list[tuple[re.Pattern, str]]:
    """A batch named by its deadline, as clause 二 gives it: 9月30日前 (9月底, 九月三十号) is the first batch …"""
    found = []
    for b in profile.batches if profile else ():
        m = re.search(r"(\d+)月(\d+)日", b.deadline)
        month, day = int(m.group(1)), int(m.group(2))
        found.append((re.compile(rf"({month}|{_cn(month)})月\s*({day}|{_cn(day)})\s*[日号]?|({month}|{_cn(month)})月底"),
                      b.batch))
    return found

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


class MatchKind(str, Enum):
    """How a subject of the question was linked to the annex, strongest first."""

    EXACT = "exact"  # an annex name as printed
    ALIAS = "alias"  # a reviewed alias (corpus/aliases.csv) or a derived name form (stem, bare name)
    ABBREVIATION = "abbreviation"  # a shorter name whose characters appear in order in one annex name, same head
    TYPO = "typo"  # the same or a near sound
    CUE = "cue"  # words of a job description (corpus/cues.csv), or a name spelled out in pieces
    NONE = "none"  # names a job or qualification the annex does not have


# A reader takes a link as the occupation it names only from these kinds on; weaker links are said aloud.
CONFIDENCE = {MatchKind.EXACT: 1.0, MatchKind.ALIAS: 0.95, MatchKind.ABBREVIATION: 0.8, MatchKind.TYPO: 0.6,
              MatchKind.CUE: 0.5, MatchKind.NONE: 0.0}


@dataclass(frozen=True)
class SubjectLink:
    """One span of the question that names a job, qualification or certificate, and what it was linked to."""

    span: str  # as the question writes it (folded), e.g. 医疗美容师证
    name: str  # the name part, without certificate words and level words, e.g. 医疗美容师
    kind: MatchKind
    occupations: tuple[str, ...] = ()
    items: tuple[int, ...] = ()
    near: tuple[str, ...] = ()  # for an unlinked subject: annex names it contains or resembles (said to differ)
    start: int = 0

    @property
    def linked(self) -> bool:
        return self.kind is not MatchKind.NONE

    @property
    def confidence(self) -> float:
        return CONFIDENCE[self.kind]


@dataclass(frozen=True)
class Mentions:
    occupations: tuple[str, ...] = ()  # canonical occupation names, in the order the question names them
    items: tuple[int, ...] = ()  # items named by number or by 职业资格名称 (may be out of range)
    departments: tuple[str, ...] = ()
    batches: tuple[str, ...] = ()  # BATCH_1, BATCH_2, BATCH_LICENSED or NO_BATCH
    clauses: tuple[int, ...] = ()  # explicit 第N条 (may be out of range)
    unknown_names: tuple[str, ...] = ()  # occupation-like words that are not in the annex
    fuzzy: tuple[tuple[str, str], ...] = ()  # (what was typed, occupation it was read as)
    subjects: tuple[SubjectLink, ...] = ()  # every job/qualification span of the question, linked or not
    # words of the question that occur in the names of a few annex items and nowhere in the notice body (建筑,
    # 化工, 制冷, 纺织): what a list or count narrowed by sector is narrowed by
    sectors: tuple[str, ...] = ()
    # occupations named only by a role word (HR): who asks, unless what is asked is an attribute of that job
    roles: tuple[str, ...] = ()

    @property
    def unlinked(self) -> tuple[SubjectLink, ...]:
        return tuple(s for s in self.subjects if not s.linked)

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
    # forms that are also what people call a role or an office (HR: the staff office, not only its certificate):
    # the job only when no other job is named, or when a certificate word follows (HR证)
    roles: set[str] = field(default_factory=set)
    english: dict[str, set[str]] = field(default_factory=dict)  # English alias as written (spaces kept) → occupations

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
                    if kind in ("occupation", "role") and target in known_occ:
                        lex.add(lex.occupations, alias, target)
                        if alias.isascii():
                            lex.english.setdefault(alias.lower(), set()).add(target)
                        if kind == "role":
                            lex.roles.add(_fold(alias))
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


# Subject spans: a noun phrase that ends in one of these heads names a job, a qualification or a certificate.
_JOB_HEADS = ("师", "员", "工", "士")
# What follows a word used as a sector (制冷有关, 建筑类, 纺织厂, 餐饮那一项, 化工职业): a word elsewhere is no sector
_SECTOR_NEXT = re.compile(r"业?(?:[的之]|这?一?块|方面的?)?(?:有关|相关|类|方面|行业|领域|厂|企业|公司|单位|那|这|工种|职业|专业|岗位|人员)"
                          r"|(?:里|上|中|内)(?:的|面的|头的)")  # 工地上的, 医院里的
# Runs of latin words (pinyin typed on a phone, or English)
_PINYIN_WORDS = re.compile(r"[a-z]+(?:\s+[a-z]+)*")
# Particles that may follow a name without naming another job (钳工嘅, 那个电工的)
_PARTICLES = ("嘅", "的", "个", "级")
# Single characters that may stand right before a name without making another job: particles, pronouns, measure
# words, 老 (老钳工), and the Cantonese particles of the 繁體 writers (嘅, 咗, 啲, 咁, 系)
_LEARN_VERBS = frozenset("考学报拿办")  # acts of learning or certifying that end the words before a name
_GLUE_END = frozenset("里问说叫是在的了")  # characters that end the words before a name, not a part of it
_SINGLE_GLUE = frozenset("老我你他她俺咱的了个嘅咗啲哋咁系是在当号张位名这那每里问说叫做干")
# Parts of speech (jieba) that, before a name, make a longer job name (医疗美容师, 数控车工): nouns and abbreviations
_NOUNISH = frozenset({"n", "nz", "ns", "nt", "ng", "nrt", "vn", "j", "l", "i"})
# Tokens that end a modifier run to the left: pronouns, verbs and particles of a question, not part of a name.
_STOP = set(
    "我 你 他 她 我们 你们 他们 俺 咱 是 不是 做 当 干 考 考了 拿 拿到 有 没有 在 了 和 与 跟 及 或 或者 还是 以及 同 "
    "请问 请 问 想 知道 这 那 这个 那个 这些 那些 该 此 本 个 张 一个 一张 名 一名 位 还 也 都 吧 吗 呢 啊 对 对于 关于 属于 "
    "像 比如 例如 就 要 会 能 可以 帮 查 看看 说 听说 什么 哪个 哪些 啥 如果 但 但是 而 里 里面 中 之 非 算 叫 称 即 "
    "如 包括 以上 等 持有 持 取得 获得 办 办的 领 发 发的 一并 以及 哪 哪一 其 其中 所 所有 各 各类 各种 那么 另外 再 "
    "现有 持证 单位 我单位 本单位 公司 企业里 "
    "确认 说明 列明 注明 核实 查询 了解 告知 判断 分别 咨询 问问 告诉 介绍 解释 明确 确定 核对 列出 列举 提供 给出 是否 "
    "发放 颁发 核发 补发 换发 注销 吊销 撤销 认定 评价 鉴定 "
    "为 成 成为 调整 纳入 列入 归 从 被 由 向 给 把 将 "
    "问下 问一下 一下 下 咨询 打听 手里 手上 已经 已 原来 以前 之前 现在 以后 目前 今年 去年 之后 附件 通知 文件 "
    # words of time and relation that qualify a certificate but never name one (后续证书, 相关证书, 原有证书)
    "后续 相关 有关 原有 上述 此前 已有 原先 剩下 全部 其他 其它 另外 新 旧 同类 后来 今后 将来 未来 有效 无效 相应 对应".split()
) | _FILLER
_INSTITUTION = ("院校", "学校", "学院", "技校", "公司", "协会", "中心", "院", "校", "厂", "班")
# Words that join a field to 资格 (法律职业资格, 会计专业技术资格): kept when a field word stands before them.
_FIELD_LINKS = {"职业", "专业技术", "专业", "技术"}
# What makes a department's name part of another body's name: 人力资源社会保障部门职业技能鉴定中心, …部门所属协会.
_ORGANISATION_TAIL = re.compile(r"门?(所属|下属|直属)?[\u4e00-\u9fff]{0,8}(中心|机构|协会|学会|研究院|事业单位)")
# 这一职业资格, 该项证书, 那种工: a demonstrative with a measure word points at a name, it is not part of one
_DEMONSTRATIVE = re.compile(r"^[这那该此本每某][一个种类项门份本张位名些样款]$")
# A place where someone works, before a job name, is not a specialisation of it (饭店厨师 is a 厨师).
_PLACE_END = tuple("店厂院馆司校场站局所队部地间区处园室位")
_JOB_WORD_END = _JOB_HEADS + ("匠", "手")
_CONJUNCTIONS = set("和与及跟或、")
# English: "<name> certificate/qualification/license"; the words before the head that name no job are dropped.
_ENGLISH_CERT = re.compile(r"\b(?:certificates?|qualifications?|licen[cs]es?|certifications?)\b")
# Words inside such a phrase that name no job (walked over), and words that end it (a name never goes past them).
_ENGLISH_MODIFIERS = set(
    "national professional vocational occupational skill skills level technical exam old existing previous current "
    "new issued qualification qualifications certificate certificates license licence".split())
_ENGLISH_STOP = set(
    "my our your his her their the a an this that these those of for in on to with and or is are was were it its "
    "i you he she we they who what which when where why how will would can could should do does did have has had "
    "if got get gets still valid affect affected apply applies about by from as at be been any all every some "
    "issue issues issued give gives after before under "
    # quantifiers and kinds: "how many qualifications", "which types of certificates"
    "many much more most few several various other others such both each either neither no not only same "
    "different kind kinds type types total number numbers list whole first second batch batches".split())
# 开网约车的, 做假牙的, 修手机的: what someone does, said as a noun; a job named by description.
_DESCRIPTION = re.compile(r"(?<![\u4e00-\u9fff]{3})(?:开|做|修|送|跑|干|搞|卖|当|带|教|看|搬|装|拉)[\u4e00-\u9fffa-z0-9]{1,6}?的(?=$|[，。？！,.?!]|呢|吗|证|人|工作|活)")
_AFTER_HEAD = set("归在是的吗呢还也都有和跟与及或要会能属算哪第证")
# Characters that never begin a name but that jieba sometimes glues to one (考过保育证 → 过保育).
_BAD_START = set("过了到着把被将让给和与跟及或是在的得也都还就又再很太更最没未已")
# One-character words that end a modifier run (a lone 操 or 维 is more likely a shredded typo, and is kept).
_FUNCTION_CHARS = set("项批条第个的了是在和与跟及或把被将也都还就又再很太最没不未已啊吗呢吧嘛呀我你他她它这那哪谁啥么要会能可当"
                      "做干考拿有对向给让从由为问请说想去来上下里中后前时等各该此其")
_CERT_VERB = set("发拿领办考取持有换补验查用颁")  # 发证, 拿证: an act on a certificate, not the name of one
_MEASURE = re.compile(r"^[一二两三四五六七八九十几\d]+[批个张本项名位种类些条]$")  # 木匠木工证: a second job word is another subject, not a modifier


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    text: str  # the whole span, 医疗美容师证
    name: str  # without certificate and level words, 医疗美容师


class EntityLinker:
    def __init__(self, corpus: Corpus, aliases_path: Path | None, profile: NoticeProfile | None = None,
                 dictionary_dir: Path | None = None) -> None:
        self.corpus = corpus
        self.profile = profile
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
        # jieba must keep every name form in one piece; the table with them is stored beside the index
        self.dictionary = use_dictionary(self.lexicon.words(), dictionary_dir)
        self._forms = sorted(
            [(f, "occupation") for f in self.lexicon.occupations]
            + [(f, "item") for f in self.lexicon.items]
            + [(f, "department") for f in self.lexicon.departments],
            key=lambda x: -len(x[0]),
        )
        # An English alias is a whole word (plural allowed), spaces optional inside it; compiled once.
        self._english_forms = {f: re.compile(r"(?<![a-z])" + r"\s*".join(map(re.escape, f)) + r"(?:s|es)?(?![a-z])")
                               for f, _ in self._forms if f.isascii()}
        self._sounds: tuple[list, dict] | None = None
        self._typed: dict[str, set[str]] | None = None
        self.sector_rows = read_sectors(aliases_path.with_name(SECTORS_FILE) if aliases_path else None, corpus)
        self._english_words: dict[frozenset[str], set[str]] | None = None
        self._corpus = corpus  # pinyin of the name forms run together → occupations  # pinyin of the name forms, made on the first typo check
        self._item_count = max(corpus.item_numbers())
        self._item_stems: dict[str, set[int]] = {}
        for r in corpus.annex_rows:
            if r.qualification.endswith("人员") and len(r.qualification) >= 5:
                self._item_stems.setdefault(_fold(r.qualification[:-2]), set()).add(r.item)
        self._exact_names = {_fold(r.occupation) for r in corpus.annex_rows}
        self._name_of_fold = {_fold(r.occupation): r.occupation for r in corpus.annex_rows}
        self._bare_names = {re.sub(r"[（(][^）)]*[）)]", "", n): n for n in self._exact_names}
        self._job_heads = tuple(profile.occupation_heads) if profile else _JOB_HEADS
        self._deadline_refs = deadline_patterns(profile)
        self._question = ""
        self._lowered = ""
        self._cert_heads = tuple(sorted(profile.certificate_heads if profile else ("证书", "资格", "证"), key=len,
                                        reverse=True))
        self._levels = tuple(sorted(profile.level_words if profile else (), key=len, reverse=True))
        self._report_words = frozenset(profile.report_words if profile else ())
        self._person_words = tuple(profile.person_words if profile else ())
        # A tail shared by several annex names (操作工, 管理员, 服务人员) names a kind of work, not one job.
        tails: dict[str, set[str]] = {}
        for name in list(self._bare_names) + [_fold(r.qualification) for r in corpus.annex_rows]:
            for k in range(2, len(name)):
                tails.setdefault(name[-k:], set()).add(name)
        self._generic = set(_GENERIC) | set(profile.generic_subjects if profile else ()) | {
            t for t, names in tails.items() if len(names) >= 2 and t not in self.lexicon.occupations}

    # ---- subjects first ------------------------------------------------------------------------

    def subject_spans(self, text: str) -> list[_Span]:
        """Spans that name a job, qualification or certificate by their form: a head word (…师/员/工/士, …证/资格/执照)
        with the modifiers before it, up to a pronoun, verb, particle, place or another job word."""
        tokens, pos = [], 0
        for tok in jieba.lcut(text):
            # jieba sometimes glues a head to the next word (照护师归 → 照护/师归): split it off again
            # (and a certificate word to the next one: 叉车证第几批 → 证/第)
            if len(tok) == 2 and tok[0] in _JOB_HEADS + ("证",) and (tok[1] in _AFTER_HEAD or tok[1] in _FUNCTION_CHARS):
                tokens += [(pos, tok[0]), (pos + 1, tok[1])]
            else:
                tokens.append((pos, tok))
            pos += len(tok)
        spans: list[_Span] = []
        i = 0
        while i < len(tokens):
            start, tok = tokens[i]
            j = i
            # a head: a job word, or a certificate word after something
            is_job = len(tok) >= 1 and tok.endswith(self._job_heads) and is_cjk(tok)
            is_cert = any(tok == h or (tok.endswith(h) and len(tok) > len(h) and tok[: -len(h)] not in _CERT_VERB)
                          for h in self._cert_heads)
            if not (is_job or is_cert) or is_job and i + 1 < len(tokens) and tokens[i + 1][1].startswith(_INSTITUTION):
                i += 1  # 技工院校, 电工学校: a job word naming a kind of school or firm is not a job asked about
                continue
            # a certificate word right after a job word belongs to it (电工 证)
            end = start + len(tok)
            if is_job and i + 1 < len(tokens) and tokens[i + 1][1] in self._cert_heads:
                end += len(tokens[i + 1][1])
                j = i + 1
            k = i - 1
            begin = start
            # the head token itself may be a job word already (美容师); a bare 工/师 needs the token before it
            while k >= 0:
                ptok = tokens[k][1]
                if ptok in _FIELD_LINKS and k >= 1 and is_cjk(tokens[k - 1][1]) and len(tokens[k - 1][1]) >= 2 \
                        and tokens[k - 1][1] not in _STOP and not tokens[k - 1][1].endswith(_JOB_WORD_END) \
                        and _is_noun(tokens[k - 1][1]):
                    begin = tokens[k][0]  # 法律职业资格, 会计专业技术资格: the field before it names the qualification
                    k -= 1
                    continue
                if not is_cjk(ptok) or ptok in _STOP or "的" in ptok or ptok.endswith(_PLACE_END) and len(ptok) >= 2 \
                        or all(ch in _FUNCTION_CHARS for ch in ptok) or _MEASURE.match(ptok) \
                        or _DEMONSTRATIVE.match(ptok) \
                        or len(ptok) >= 2 and (ptok[-1] in "到了过着" or ptok[0] in "没未已") \
                        or ptok.endswith(_JOB_WORD_END) and len(ptok) >= 2 and not (len(tok) == 1 and k == i - 1) \
                        or start - tokens[k][0] > 10:
                    break
                begin = tokens[k][0]
                k -= 1
            while begin < end - 1 and text[begin] in _BAD_START:
                begin += 1
            for b, e in self._split_at_conjunctions(text, begin, end):
                text_span = text[b:e]
                name = self._name_part(text_span)
                last = e == end
                if name and len(name) >= 2 and name not in self._generic and not name.endswith(self._person_words) and (
                        name not in self._levels) and (
                        self._name_like(name, is_job) if last else
                        name.endswith(self._job_heads) or self.link_span(_Span(b, e, text_span, name)).linked):
                    spans.append(_Span(b, e, text_span, name))
            i = j + 1
        starts = {p for p, t in tokens if len(t) == 1}
        for m in _ENGLISH_CERT.finditer(self._lowered):  # "my CPA certificate", "legal professional qualification"
            words: list[str] = []
            for w in reversed(re.findall(r"[a-z][a-z\-]*", self._lowered[: m.start()])):
                if _ENGLISH_CERT.fullmatch(w):
                    break  # the head of an earlier phrase
                parts = w.strip("-").split("-")  # first-batch, skill-level: judged by their parts
                if all(p in _ENGLISH_MODIFIERS for p in parts):
                    continue  # national, vocational …: part of the phrase, not of the name
                if any(p in _ENGLISH_STOP for p in parts) or len(words) >= 4:
                    break
                words.insert(0, w)
            if words:
                folded = "".join(words)
                at = text.find(folded)
                start, end = (at, at + len(folded)) if at >= 0 else (len(text), len(text))
                spans.append(_Span(start, end, " ".join(words), " ".join(words)))
        for m in _DESCRIPTION.finditer(text):  # 开网约车的, 做假牙的: a job named by what it does
            # the verb is a word of its own (not 教 of 驾校教练的), or follows a particle jieba glued it to (那开…)
            if m.start() in starts or m.start() > 0 and text[m.start() - 1] in _FUNCTION_CHARS | {"那"}:
                spans.append(_Span(m.start(), m.end(), m.group(0), m.group(0)))
        # keep the longest of overlapping spans
        spans.sort(key=lambda s: (s.start, -(s.end - s.start)))
        kept: list[_Span] = []
        for s in spans:
            if kept and s.start < kept[-1].end:
                if (s.end - s.start) > (kept[-1].end - kept[-1].start):
                    kept[-1] = s
                continue
            kept.append(s)
        # 电工仪器仪表装配工: a job word that ended the modifiers of an unknown name is part of that name
        merged: list[_Span] = []
        for s in kept:
            prev = merged[-1] if merged else None
            if prev and prev.end == s.start and not s.name.endswith("的") and not s.name.isascii() \
                    and self.link_span(prev).linked \
                    and not self.link_span(s).linked:
                whole = text[prev.start:s.end]
                merged[-1] = _Span(prev.start, s.end, whole, self._name_part(whole))
            else:
                merged.append(s)
        return merged

    def _split_at_conjunctions(self, text: str, begin: int, end: int) -> list[tuple[int, int]]:
        """架子公和钢筋工 → 架子公 | 钢筋工: a conjunction inside a span separates two names, unless it belongs to a
        known name (钟表及计时仪器制造工, 广电和通信设备电子装接工)."""
        known = [False] * (end - begin)
        span = text[begin:end]
        for form in self.lexicon.occupations:
            start = span.find(form)
            while start != -1:
                for i in range(start, start + len(form)):
                    known[i] = True
                start = span.find(form, start + 1)
        cuts = [i for i, ch in enumerate(span) if ch in _CONJUNCTIONS and not known[i] and 0 < i < len(span) - 1]
        if not cuts:
            return [(begin, end)]
        bounds, prev = [], 0
        for c in cuts:
            bounds.append((begin + prev, begin + c))
            prev = c + 1
        bounds.append((begin + prev, end))
        return [(b, e) for b, e in bounds if e > b]

    def _name_like(self, name: str, job_head: bool) -> bool:
        """Before a certificate word, a name is a job word, a known form or one word (会计证, 驾驶证), not a phrase
        (突击多发点证书); a group of people (持证人员) names no job."""
        if name in self.lexicon.occupations or name in self.lexicon.items:
            return True
        if name.endswith("人员"):
            return False
        if job_head or name.endswith(self._job_heads) or len(jieba.lcut(name)) == 1:
            return True
        from jieba import posseg  # part-of-speech tables load only for a phrase before a certificate word

        return any(w.flag.startswith("n") and len(w.word) >= 2 for w in posseg.lcut(name))

    def _name_part(self, span: str) -> str:
        name = span
        for head in self._cert_heads:  # 电工证 → 电工; 教师资格证 → 教师
            if name.endswith(head) and len(name) > len(head):
                name = name[: -len(head)]
                break
        for head in self._cert_heads:
            if name.endswith(head) and len(name) > len(head):
                name = name[: -len(head)]
        changed = True
        while changed:  # 高级电工 → 电工, 国家职业资格美容师 → 美容师
            changed = False
            for level in self._levels:
                if name.startswith(level) and len(name) > len(level) + 1:
                    name, changed = name[len(level):], True
        for tail in ("职业", "的"):  # 准入类职业资格 → 准入类 (generic)
            if name.endswith(tail) and len(name) > len(tail):
                name = name[: -len(tail)]
        return "" if name in self._cert_heads else name

    def link_span(self, span: _Span) -> SubjectLink:
        name = span.name
        base = dict(span=span.text, name=name, start=span.start)
        if name.isascii():  # an English name before a certificate word: the alias table's English forms, or none
            folded = name.replace(" ", "")
            if folded in self.lexicon.occupations:
                return SubjectLink(**base, kind=MatchKind.ALIAS, occupations=tuple(sorted(self.lexicon.occupations[folded])))
            return SubjectLink(**base, kind=MatchKind.NONE)
        if name.endswith("的"):  # a description: a name form inside it (当保安的), the cue table, or nothing
            inside = [f for f in self.lexicon.occupations if len(f) >= 2 and f in name]
            if inside:
                best = max(inside, key=len)
                return SubjectLink(**base, kind=MatchKind.CUE, occupations=tuple(sorted(self.lexicon.occupations[best])))
            described = self.by_cues(self._question)
            if described:
                return SubjectLink(**base, kind=MatchKind.CUE, occupations=tuple(n for _, n in described))
            return SubjectLink(**base, kind=MatchKind.NONE)
        if name not in self.lexicon.occupations and name[:-1] in self.lexicon.occupations and name.endswith(self._job_heads):
            name = name[:-1]  # 驾校教练员: the alias 驾校教练 with a job head added
        if name in self.lexicon.occupations:
            kind = MatchKind.EXACT if name in self._exact_names or name in self._bare_names else MatchKind.ALIAS
            return SubjectLink(**base, kind=kind, occupations=tuple(sorted(self.lexicon.occupations[name])))
        if name in self.lexicon.items:
            return SubjectLink(**base, kind=MatchKind.ALIAS, items=tuple(sorted(self.lexicon.items[name])))
        abbreviated = [n for n in self._bare_names if _abbreviates(name, n)]
        if len(abbreviated) == 1:
            return SubjectLink(**base, kind=MatchKind.ABBREVIATION,
                               occupations=(self._name_of_fold[self._bare_names[abbreviated[0]]],))
        homophones = self._homophones.get(tuple(lazy_pinyin(name)), set()) if is_cjk(name) and len(name) >= 3 else set()

        if homophones and len(homophones) <= 2:  # 美法师 → 美发师, 锅炉操做工 → 锅炉操作工
            return SubjectLink(**base, kind=MatchKind.TYPO, occupations=tuple(sorted(homophones)))
        in_context = self._in_context(name)
        if in_context:  # 老钳工, 一辈子印花工, 钳工高级: a name with words of the sentence glued to it
            return SubjectLink(**base, kind=MatchKind.ALIAS, occupations=tuple(sorted(self.lexicon.occupations[in_context])))
        near = self._near(name)
        if any(form in name for form in self.lexicon.occupations if len(form) >= 2):
            return SubjectLink(**base, kind=MatchKind.NONE, near=near)  # 医疗美容师 is not 美容师
        typos = [(t, n) for t, n in self._fuzzy(name) if t == name]
        if typos and len({n for _, n in typos}) <= 2:
            return SubjectLink(**base, kind=MatchKind.TYPO, occupations=tuple(dict.fromkeys(n for _, n in typos)))
        return SubjectLink(**base, kind=MatchKind.NONE, near=near)

    def _in_context(self, name: str) -> str:
        """The known name form a span ends with (before level and certificate words), when what comes before it is
        words of the sentence, not part of a longer job name: the word right before the name is not a noun (老钳工,
        我刚考完中式烹调师, 一辈子印花工, 家里长辈有张高级美发师), or there is nothing. A noun (医疗美容师, 模具钳工) or a
        single character that is no particle (挡车工) makes another job, which stays unlinked and is declined by name.
        '' when there is no such form."""
        rest = name
        changed = True
        while changed:  # 钳工高级 → 钳工, 劳动关系协调员三级 → 劳动关系协调员
            changed = False
            for tail in (*self._levels, *self._cert_heads, *_PARTICLES):
                if rest.endswith(tail) and len(rest) > len(tail) + 1:
                    rest, changed = rest[: -len(tail)], True
        forms = [f for f in self.lexicon.occupations if len(f) >= 2 and rest.endswith(f)]
        if not forms:
            return ""
        form = max(forms, key=len)
        before = rest[: -len(form)]
        for level in self._levels:  # 高级 right before the name is a level, not a modifier
            if before.endswith(level):
                before = before[: -len(level)]
                break
        if not before:
            return form if rest != name else ""
        from jieba import posseg  # part-of-speech tables load only for a span that is not a known form

        last = posseg.lcut(before)[-1]  # the word right before the name decides
        if len(last.word) >= 2 and is_cjk(last.word) and (last.word[0] == form[0] or _in_order(last.word, form)):
            return form  # 汽修 汽车维修工, 眼睛 眼镜验光员: a speaker's first try at the name, then the name
        if len(last.word) >= 2 and last.word[-1] in _GLUE_END:
            return form  # 文里防水工, 伊问模具工: jieba glued a localizer or a verb to the word before the name
        if last.word[-1] in _LEARN_VERBS:  # 准备考茶艺师, 想学电工, 打算报育婴员: the name is what is learned
            return form
        if last.word in self._report_words:  # 网传中式烹调师…: what was heard about the job
            return form
        if len(last.word) == 1:  # one character glues into a name (挡车工, 修脚工) unless it is a particle or pronoun
            return form if last.word in _SINGLE_GLUE else ""
        return "" if last.flag in _NOUNISH else form

    def _near(self, name: str) -> tuple[str, ...]:
        """Annex names an unlinked subject contains (医疗美容师 ⊃ 美容师) or is contained in (营养师 ⊂ 公共营养师)."""
        inside = sorted({n for form, names in self.lexicon.occupations.items() if len(form) >= 2 and form in name
                         for n in names}, key=lambda n: (-len(n), n))
        if inside:
            return tuple(inside[:2])
        around = [self._name_of_fold[n] for n in self._exact_names if name in n and len(name) >= 3]
        return tuple(sorted(around)[:2])

    def run(self, question: str) -> Mentions:
        text = _fold(question)
        self._question = text  # descriptions look for cue words in the whole question
        self._lowered = question.lower()
        occupations: list[tuple[int, str]] = []
        items: list[tuple[int, int]] = []
        departments: list[tuple[int, str]] = []
        bodies: list[str] = []  # other bodies named after a department (its 鉴定中心)
        roles: list[tuple[int, str]] = []
        taken = [False] * len(text)
        spans = self.subject_spans(text)
        subjects = [self.link_span(s) for s in spans]
        for span, link in zip(spans, subjects):
            for i in range(span.start, span.end):
                taken[i] = True  # a name inside a subject span is read as part of that subject only
            occupations += [(span.start, n) for n in link.occupations]
            items += [(span.start, n) for n in link.items]
        lowered = question.lower()
        for form, kind in self._forms:
            if form.isascii() and not self._english_forms[form].search(lowered):
                continue  # an English alias is a word, not letters inside another word (batcHRemoved)
            start = text.find(form)
            while start != -1:
                end = start + len(form)
                body = _ORGANISATION_TAIL.match(text, end) if kind == "department" else None
                if body and not any(taken[start:body.end()]):
                    # 人力资源社会保障部门职业技能鉴定中心 is a body of its own, not the department: it is read as
                    # nothing else either (no job is guessed from its words)
                    for i in range(start, body.end()):
                        taken[i] = True
                    bodies.append(text[start:body.end()])
                elif not any(taken[start:end]):
                    for i in range(start, end):
                        taken[i] = True
                    if kind == "occupation" and form in self.lexicon.roles and not text.startswith(
                            self._cert_heads, end):
                        roles += [(start, name) for name in sorted(self.lexicon.occupations[form])]
                    elif kind == "occupation":
                        occupations += [(start, name) for name in sorted(self.lexicon.occupations[form])]
                    elif kind == "item":
                        items += [(start, n) for n in sorted(self.lexicon.items[form])]
                    else:
                        departments += [(start, d) for d in sorted(self.lexicon.departments[form])]
                start = text.find(form, end)
        if not (occupations or any(s.linked for s in subjects)) and _PINYIN_WORDS.search(lowered):
            typed = self.by_typed_pinyin(lowered)  # dian gong zheng, gangjingong: a name typed in pinyin
            occupations += [(0, name) for _, name in typed]
            subjects += [SubjectLink(span=t, name=t, kind=MatchKind.TYPO, occupations=(n,)) for t, n in typed]
        if not (occupations or any(s.linked for s in subjects)) and _PINYIN_WORDS.search(lowered):
            worded = self.by_english_words(question)  # relay protection job → relay protection technician
            if worded:  # the English words read as a name are that subject, not a name the annex lacks
                subjects = [s for s in subjects if s.linked or not s.name.isascii()]
            occupations += [(0, name) for _, name in worded]
            subjects += [SubjectLink(span=t, name=t, kind=MatchKind.CUE, occupations=(n,)) for t, n in worded]
        if not (occupations or any(s.linked for s in subjects) or self._batches(text)):
            occupations += roles  # (我是HR，保安员证…: the role word is who asks, the certificate is the subject)
        else:
            roles = []
        masked = "".join("　" if t else ch for ch, t in zip(text, taken))
        # 餐饮服务那项, 美容美发服务这一类: an item named by its 职业资格名称 without 人员, pointed at as an item
        for stem, numbers in self._item_stems.items():
            for m in re.finditer(re.escape(stem) + r"(?:人员)?的?(?:那|这)?一?(?:项|类)", masked):
                items += [(m.start(), n) for n in numbers]
        for m in _ITEM_REF.finditer(masked):
            n = chinese_number(next(g for g in m.groups() if g))
            if n is not None:
                items.append((m.start(), n))
        fuzzy: list[tuple[str, str]] = [(s.name, n) for s in subjects
                                         if s.kind in (MatchKind.TYPO, MatchKind.ABBREVIATION) for n in s.occupations]
        # Job descriptions, names in pieces and whole-question typos only when the question names no subject.
        if not (subjects or occupations or items or departments or bodies):
            described = self.by_cues(masked)
            fuzzy += described
            occupations += [(0, name) for _, name in described]
            by_cue: dict[str, list[str]] = {}
            for typed, name in described:  # one subject per description, however many occupations it fits
                by_cue.setdefault(typed, []).append(name)
            subjects += [SubjectLink(span=typed, name=typed, kind=MatchKind.CUE, occupations=tuple(names))
                         for typed, names in by_cue.items()]
        if not (subjects or occupations or items or departments or bodies):
            partial = self.by_name_parts(masked)
            if partial:
                fuzzy = [partial]
                occupations.append((0, partial[1]))
                subjects.append(SubjectLink(span=partial[0], name=partial[0], kind=MatchKind.CUE,
                                            occupations=(partial[1],)))
        if not (subjects or occupations or items or departments or bodies):
            typos = self._fuzzy(masked)
            fuzzy = typos
            occupations += [(0, name) for _, name in typos]
            subjects += [SubjectLink(span=t, name=t, kind=MatchKind.TYPO, occupations=(n,)) for t, n in typos]
        return Mentions(
            occupations=_ordered(occupations),
            items=_ordered(items),
            departments=_ordered(departments),
            batches=self._batches(masked),
            clauses=named_clauses(masked),
            unknown_names=tuple(s.name for s in subjects if not s.linked),
            fuzzy=tuple(fuzzy),
            subjects=tuple(subjects),
            sectors=self.sector_words(text),
            roles=tuple(dict.fromkeys(name for _, name in roles)),
        )

    def sector_words(self, text: str) -> tuple[str, ...]:
        """Sector words of corpus/sectors.csv the question uses as a sector: followed by what makes a word a sector
        (有关, 类, 行业, 厂, 里的, 那一项 …: _SECTOR_NEXT). A word inside a full annex name the question writes out
        (制冷 in 制冷工) is that name, not a sector; of two words found, one inside the other, the longer."""
        spoken = [n for n in self._exact_names if n in text]
        found = [w for w in self.sector_rows if w in text and any(_SECTOR_NEXT.match(text, m.end()) for m in re.finditer(
            re.escape(w), text)) and not any(w in n for n in spoken)]
        found = [w for w in found if not any(w != o and w in o for o in found)]  # the longest word only
        return tuple(sorted(found, key=text.find))

    def sector_annex_rows(self, words) -> list:
        """The annex rows corpus/sectors.csv gives for these sector words, in annex order."""
        wanted = {row for w in words for row in self.sector_rows.get(w, ())}
        return [r for r in self._corpus.annex_rows if (r.item, "") in wanted or (r.item, _fold(r.occupation)) in wanted]

    @property
    def _pinyin_forms(self) -> list[tuple[str, list[str]]]:
        return self._pinyin()[0]

    @property
    def _homophones(self) -> dict[tuple[str, ...], set[str]]:
        return self._pinyin()[1]

    def _pinyin(self) -> tuple[list, dict]:
        """Pinyin of every name form (for typos), computed once, when a question first needs it."""
        if self._sounds is None:
            forms = [(f, lazy_pinyin(f)) for f in self.lexicon.occupations if re.fullmatch(r"[\u4e00-\u9fff]{2,}", f)]
            homophones: dict[tuple[str, ...], set[str]] = {}
            for form, form_py in forms:
                homophones.setdefault(tuple(form_py), set()).update(self.lexicon.occupations[form])
            self._sounds = (forms, homophones)
        return self._sounds

    def by_typed_pinyin(self, lowered: str) -> list[tuple[str, str]]:
        """Name forms of two or more characters typed in pinyin without tones, with or without spaces between the
        syllables (dian gong, gangjingong), as whole words; a form that stands for several occupations is left out
        (one guess only)."""
        if self._typed is None:
            self._typed = {}
            for form, form_py in self._pinyin_forms:
                if len(form) >= 2 and all(p.isascii() and p.isalpha() for p in form_py):
                    self._typed.setdefault("".join(form_py), set()).update(self.lexicon.occupations[form])
        found: list[tuple[str, str]] = []
        for run in _PINYIN_WORDS.finditer(lowered):
            words = run.group(0).split()
            used = [False] * len(words)
            for size in range(min(len(words), 6), 0, -1):  # the longest run of words that spells a form
                for i in range(len(words) - size + 1):
                    names = self._typed.get("".join(words[i : i + size]))
                    if names and len(names) == 1 and len("".join(words[i : i + size])) >= 4 and not any(
                            used[i : i + size]):
                        used[i : i + size] = [True] * size
                        found.append((" ".join(words[i : i + size]), next(iter(names))))
        return list(dict.fromkeys(found))

    def by_english_words(self, question: str) -> list[tuple[str, str]]:
        """An English name said in other words: the English alias whose distinctive words (not worker, operator,
        technician …) all occur in the question, two words or more, or one long word; the alias with the most such
        words wins, and only when it names one or two occupations. A guess, said as one (kind CUE)."""
        if self._english_words is None:
            self._english_words = {}
            for form, names in self.lexicon.english.items():
                if form.isascii():
                    words = frozenset(_english_tokens(form)) - _GENERIC_ENGLISH
                    if len(words) >= 2 or any(len(w) >= 7 for w in words):
                        self._english_words.setdefault(words, set()).update(names)
        asked = set(_english_tokens(question))
        found = [(len(words), words, names) for words, names in self._english_words.items() if words <= asked]
        if not found:
            return []
        best = max(n for n, _, _ in found)
        names = sorted({name for n, _, ns in found if n == best for name in ns})
        if len(names) > 2:
            return []
        said = " ".join(sorted(next(w for n, w, _ in found if n == best)))
        return [(said, name) for name in names]

    def _batches(self, text: str) -> tuple[str, ...]:
        found: list[str] = []
        for m in _BATCH_REF.finditer(text):
            word = m.group(0)
            if word in ("首批", "头一批"):
                n = 1
            elif m.group(5) or m.group(6):
                n = {"first": 1, "second": 2, "third": 3, "one": 1, "two": 2, "three": 3}[(m.group(5) or m.group(6)).lower()]
            else:
                n = chinese_number(next(g for g in m.groups() if g))
            found.append({1: BATCH_1, 2: BATCH_2}.get(n, NO_BATCH))
        for rx, batch in self._deadline_refs:
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
            # said in one phrase: the pieces lie close together (公共安全 … 水平评价 is not 安全评价师)
            starts = [text.find(w) for w in hits]
            spread = max(st + len(w) for st, w in zip(starts, hits)) - min(starts) if hits else 0
            if (len(hits) >= 2 or among) and hits and covered * 2 >= len(name if not among else min(hits, key=len)) \
                    and (among or spread <= len(name) + 4):
                scored.append((len(hits), covered, name, "、".join(sorted(hits, key=text.find))))
        scored.sort(reverse=True)
        if not scored or (len(scored) > 1 and scored[0][:2] == scored[1][:2]):
            return None
        return scored[0][3], self._name_of_fold.get(scored[0][2], scored[0][2])

    def _fuzzy(self, text: str) -> list[tuple[str, str]]:
        """Typos: the same pinyin (电公 → 电工), or one character off in a name of four or more; a two-character
        window whose last character begins a word with the next one is no name (中出现 is 中 + 出现, not 中厨)."""
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
                if i not in starts or window == form or window in self._generic:
                    continue  # (an exact occurrence was left out on purpose; 制造工 is a tail of many names)
                if n == 2 and _word_goes_on(text, i + 1):  # 中出现: 出 begins the word 出现
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

def _in_order(short: str, name: str) -> bool:
    """Every character of `short` occurs in `name`, in order (汽修 in 汽车维修工, 电子 in …电子装接工)."""
    it = iter(name)
    return all(ch in it for ch in short)


def _word_goes_on(text: str, i: int) -> bool:
    """text[i] and the character after it are a word of jieba's dictionary (出现), and that character is no
    certificate or function word (电公证, 电公是 go on as a name)."""
    pair = text[i : i + 2]
    return len(pair) == 2 and pair[1] not in _FUNCTION_CHARS and pair[1] not in "证书" and bool(jieba.get_FREQ(pair))


def _sounds_alike(a: str, b: str) -> bool:
    """Two syllables a typist confuses: the same initial (磨/模) or the same final (掉/调)."""
    def split(syllable: str) -> tuple[str, str]:
        m = re.match(r"(zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw]?)(.*)", syllable)
        return m.group(1), m.group(2)
    (ia, fa), (ib, fb) = split(a), split(b)
    return a == b or (ia and ia == ib) or (fa and fa == fb)


def lazy_pinyin(text: str) -> list[str]:
    from pypinyin import lazy_pinyin as convert  # its tables load only when a question needs a sound match

    return convert(text)


def _is_noun(word: str) -> bool:
    """A field (法律), not a verb or preposition (对接, 按照): jieba's part of speech, loaded only when asked."""
    from jieba import posseg

    return all(w.flag == "n" for w in posseg.lcut(word))


# English words that say someone works, not at what (an English name said in other words is matched without them)
class SectorTableError(CorpusIntegrityError):
    """corpus/sectors.csv names a row the annex does not have."""


_GENERIC_ENGLISH = frozenset("worker operator technician tech tester maker staff personnel specialist job occupation "
                             "qualification certificate employee person people man woman the of and for in a an "
                             "official officer".split())


def named_clauses(text: str) -> tuple[int, ...]:
    """The clauses a text names by number (第四条 → 4), and 0 for the opening paragraph (开头)."""
    return tuple(n for m in _CLAUSE_REF.finditer(text) if (n := chinese_number(m.group(1))) is not None) + (
        (0,) if _OPENING_REF.search(text) else ())


def read_sectors(path: Path | None, corpus: Corpus) -> dict[str, tuple[tuple[int, str], ...]]:
    """corpus/sectors.csv as sector word → (item, occupation) rows, "" for a whole item. A row naming an item or an
    occupation the annex does not have is refused with one line naming it (SectorTableError)."""
    if path is None or not path.exists():
        return {}
    known = {(r.item, _fold(r.occupation)) for r in corpus.annex_rows}
    items = {r.item for r in corpus.annex_rows}
    table: dict[str, list[tuple[int, str]]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for n, rec in enumerate(csv.DictReader(fh), start=2):
            word, occupation = _fold(rec["sector"]), _fold(rec["occupation"] or "")
            item = int(rec["item"]) if (rec["item"] or "").strip().isdigit() else None
            if len(word) < 2 or item not in items or (occupation and (item, occupation) not in known):
                raise SectorTableError(f"{path.name} line {n}: {rec['sector']},{rec['item']},{rec['occupation']} "
                                       f"is not a sector word with an annex row")
            table.setdefault(word, []).append((item, occupation))
    return {w: tuple(dict.fromkeys(rows)) for w, rows in table.items()}


def _english_tokens(text: str) -> list[str]:
    """Lower-case English words without accents, a plural s taken off (makers → maker, glasses stays)."""
    plain = unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z]+", plain)
    return [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words]


def is_cjk(token: str) -> bool:
    return bool(re.fullmatch(r"[\u4e00-\u9fff]+", token))


def _abbreviates(short: str, name: str) -> bool:
    """信通机务员 → 信息通信网络机务员: shorter, same last two characters, every character in order, and either the same first
    character or a tail of the name (木工 → 手工木工). Never the reverse: a longer name is not an abbreviation."""
    if not (2 <= len(short) < len(name)) or short[-2:] != name[-2:]:
        return False  # the head word stays whole (机务员 of 信息通信网络机务员); 机动车驾驶员 is not 机动车驾驶教练员
    if name.endswith(short):
        return True
    if short[0] != name[0] or len(short) < 3:
        return False
    it = iter(name)
    return all(ch in it for ch in short)


def _ordered(found: list[tuple[int, object]]) -> tuple:
    return tuple(dict.fromkeys(v for _, v in sorted(found, key=lambda x: x[0])))

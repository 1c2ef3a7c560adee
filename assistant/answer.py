"""Answer stage, offline and grounded: understand the question, look the facts up, compose a cited answer.

Every fact in an answer comes from a parsed record (clause text, annex row, header fact); the text around
them is fixed wording. When nothing in the notice supports an answer, the answer declines."""
from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field, replace

from .index import HEADER_LABEL, header_fact_texts
from .link import NO_BATCH, EntityLinker, Mentions
from .normalize import normalize
from .records import (
    BATCH_1, BATCH_2, BATCH_LICENSED, CLAUSE_LABELS, Answer, AnnexRow, Citation, Corpus, Grounding, Turn,
)
from .retrieve import HybridRetriever

SCOPE = (
    "本助手只解答人社厅发〔2020〕80号《人力资源社会保障部办公厅关于做好水平评价类技能人员职业资格退出目录有关工作的通知》"
    "及其附件的内容：76项水平评价类技能人员职业资格（约190个职业）的退出批次、时间和实施部门，"
    "以及已发证书效力、鉴定考试后续安排、职业技能等级认定等规定。"
)
EXAMPLES = "例如可以问：“电工证什么时候退出目录？”“国家中医药管理局负责哪些职业？”“退出目录前发的证书还有效吗？”"

# What the question asks about (attributes) — order matters only for phrasing.
_WANTS = {
    "departments": r"部门|单位|谁负责|谁管|归谁|哪家|主管|实施|组织|负责|管理|发证|归口|department",
    "deadline": r"什么时候|何时|哪天|几号|时间|日期|截止|期限|多久|deadline|when|啥时|几时|哪年|几月",
    "batch": r"第几批|哪一?批|几批|批次|batch|分批",
    "category": r"准入|水平评价|什么类|哪一?类|类别|性质",
    "item": r"第几项|哪一?项|序号|属于什么职业资格|哪个职业资格",
    "list": r"哪些|有什么|有啥|什么职业|什么工种|列表|清单|名单|都有|包括|包含|列出|列一下|列举|全部|所有|list|which|涉及",
    "count": r"多少|几个|几项|几种|数量|how many|总共|一共|共有|共计|总数",
    "compare": r"一样|相同|区别|不同|同一批|比较|哪个早|哪个先|哪个晚|差别|vs|对比|一致",
    "validity": r"有用|有效|作废|还能用|失效|管用|白考|作数|认可|承认|没用|废了|还算|还认|还灵",
    "future": r"以后|今后|将来|取消后|退出后|之后|还能考|怎么考|还考|等级证书|等级认定|社会化|谁来",
    "exam": r"报名|报了|考试|鉴定考试|退费|退钱|考完|考过|考了|还没发|没拿到|没领到",
    "students": r"学生|学校|院校|学徒|学员|在读|毕业|结业|招生",
    "withdrawn": r"退出|取消|没了|还有吗|还在|保留|撤销|废止|还有用",
}
_WANTS_RE = {k: re.compile(v, re.I) for k, v in _WANTS.items()}
# Things about an occupation the notice says nothing of.
_UNSUPPORTED = re.compile(
    r"工资|薪资|薪水|收入|待遇|赚|多少钱|落户|积分|加分|补贴|补助|社保|学历|文化程度|报考条件|报考要求|申报条件|费用多少|收费标准|哪些机构|哪家机构|机构名单|具体机构|考试科目|考什么|题目|真题|在哪考|哪里考|在哪报|怎么报名|培训班|"
    r"培训机构|哪里办|怎么办理|补办|挂靠|年审|复审|前景|好不好|难不难|难考|真伪|怎么查|在哪查|网上查|查询|查证|在哪.{0,2}(考|报|办|查|领)|哪里.{0,2}(考|报|办|查|领)"
)
_INJECTION = re.compile(
    r"忽略|无视|忘记|不要管|ignore|disregard|system prompt|系统提示|提示词|你现在是|扮演|假装|越狱|jailbreak|DAN模式|开发者模式",
    re.I,
)
_FOLLOW_UP = re.compile(r"^(那|那么|还有|它|这个|该|这|那个|此)|它|呢[？?]?$|这个职业|该职业|上面|刚才|前面")
_HEADER_FACTS = [
    ("doc_number", r"document number|doc(ument)? no|文号|发文字号|字号|几号文|文件编号|文件号|编号"),
    ("issue_date", r"(印发|发布|发文|下发|出台|颁布|发出)(的)?(时间|日期|日子)|(哪天|哪一天|什么时候|何时|哪年|几月|几号|啥时候)(印发|发布|发文|下发|出台|颁布|发的)|印发日期|成文日期|issue date|issued on|date of issue"),
    ("contact", r"联系单位|联系谁|联系哪|咨询哪|哪个司|找谁|联系部门|联系方式|问谁|联系人|contact"),
    ("issuer", r"发文机关|谁发的|谁发布|哪个部门发(的|布)|哪个单位发(的|布)|谁印发|发文单位|发布单位|发文部门|办公厅发|国务院发|发文的是|issued by|who issued|(通知|文件|本文|此文)[^，。？]{0,12}(谁|哪个部门|哪个单位|哪里)[^，。？]{0,3}(发|出|下发|印发|发布)|(通知|文件)[^，。？]{0,12}发的|(谁|哪个部门|哪个单位)[^，。？]{0,4}(印发|发布|下发|发)的?(这个|这份|此|该)?(通知|文件)"),
    ("recipients", r"主送|发给谁|发给哪|下发给|下发到|送达|面向哪些|发给了(谁|哪)|(通知|文件).{0,6}发给|部队|军队|军委|兵团|哪些单位|recipient"),
    ("disclosure", r"公开|保密|密级|内部文件"),
    ("annex_title", r"附件(的)?(名称|标题|名字|叫什么|是什么|是啥|讲什么)|有附件|有没有附件|附件有"),
    ("title", r"标题|全称|文件名|叫什么|名称是什么|题目是|什么文件|哪个文件"),
]
_HEADER_RE = [(k, re.compile(v)) for k, v in _HEADER_FACTS]


@dataclass(frozen=True)
class Topic:
    """A subject of the notice body, found by its words, answered by quoting the sentences that carry it."""

    name: str
    pattern: re.Pattern
    clause: int
    sentence_keys: tuple[str, ...]  # a sentence is quoted when it contains one of these
    lead: str  # one plain-words line before the quotes
    quote_from: str = ""  # quote a long sentence only from this phrase on
    also: tuple[tuple[int, tuple[str, ...]], ...] = ()  # further (clause, sentence keys) the topic rests on


TOPICS = [
    Topic("centres", re.compile(r"assessment cent|鉴定中心|鉴定站|鉴定所|鉴定机构"), 6, ("鉴定中心",),
          "人力资源社会保障部门的职业技能鉴定中心要加快职能转变、加强职业技能等级认定的质量监管；有关单位的鉴定中心可探索向社会培训评价组织转型。"),
    Topic("students", re.compile(r"student|apprentice|school|学生|学校|院校|学徒|学员|在读|毕业|结业|招生|培养计划"), 3, ("职业院校",),
          "按职业资格证书培养计划招生的职业院校（含技工院校）学生和企业新型学徒，支持其执行培养培训计划，结业时能取得相应职业资格证书或职业技能等级证书。"),
    Topic("exam", re.compile(r"exam|registration|refund|考了|还没发|没发证|没拿到|没领到|报名|考试公告|鉴定考试|已报|报了|退费|退钱|退回|费用|考完|考过|考试|鉴定公告"), 3,
          ("鉴定考试公告", "已组织完成鉴定考试"),
          "已发布鉴定考试公告或已受理报名的，可按考生意愿继续考试或退费；已考完的，做好证书发放。"),
    Topic("management", re.compile(r"违规|突击|严禁|鉴定质量|证书管理|乱发|滥发|纪律|发证.{0,4}要求|发放.{0,4}要求|证书发放"), 4, ("规范实施", "严格职业资格证书发放"),
          "通知要求规范实施职业技能鉴定、严格职业资格证书发放，严禁违规、突击发放证书。"),
    Topic("law", re.compile(r"法律|法规|立法|依法|准入类是什么|什么是准入|怎么调整|如何调整|调整程序|法定程序"), 6, ("法律法规",),
          "与公共安全、人身健康、生命财产安全等密切相关的职业资格，有关单位要配合做好相关法律法规制定修订工作，依法将其调整为准入类职业资格。"),
    Topic("validity", re.compile(
        r"valid|expire|still (work|count|use)|(已|已经|以前|之前|原来|原先|手里|手上|现有|过去|老|拿到|考到|考的|发的|取得)[^。？]{0,10}(证|证书)|"
        r"(证|证书)[^。？]{0,10}(有效|作废|有用|还能用|失效|管用|作数|认可|承认|没用|废|还算)|"
        r"(有效|作废|失效|白考)"), 4, ("继续有效",),
        "退出目录前已经发放的职业资格证书继续有效。"),
    Topic("future", re.compile(
        r"who (issues|certif)|issue.{0,20}certificate|certificate.{0,20}after|以后|今后|将来|谁来|谁发|谁认定|谁评|"
        r"等级认定|等级证书|社会化|用人单位|评价组织|自主评价|取代|替代|代替|还能考|怎么考|还考|"
        r"企业.{0,8}(评|认定|发证)|自主|自己评|自己认定|试点|遴选|培训评价组织|政府.{0,6}(认定|发证)"),
          1, ("由用人单位",), "退出目录后，改为社会化职业技能等级认定。", quote_from="将水平评价类技能人员职业资格分批有序退出目录",
          also=((5, ("试点", "自主评价")),)),
    Topic("why", re.compile(r"为什么|为何|意义|目的|原因|好处|why|初衷|干嘛要|为啥"), 1, ("重要意义", "一场革命", "有利于"),
          "通知第一条说明，取消水平评价类技能人员职业资格、推行社会化职业技能等级认定，是推动政府职能转变、形成以市场为导向的技能人才培养使用机制的一场革命。"),
    Topic("background", re.compile(r"国务院|常务会议|2019|谁决定|依据|背景|由来"), 0, ("国务院常务会议决定",),
          "2019年12月，国务院常务会议决定分步取消水平评价类技能人员职业资格，推行社会化职业技能等级认定。"),
    Topic("schedule", re.compile(
        r"(什么时候|何时|啥时候|哪天).{0,4}(退出|取消|完成)|分几批|几批|分批|时间安排|(什么时候|何时|什么时间|哪天|多久).{0,6}完成|完成.{0,4}(时间|期限|时限)|年底前|进度|时间表|什么时候退出|何时退出|什么时候取消|啥时候|退出时间|哪年|timeline|schedule"),
          2, ("拟分批", "第一批退出", "第二批退出", "年底前完成"),
          "水平评价类技能人员职业资格在2020年年底前分两批退出目录：第一批拟于9月30日前退出，第二批拟于12月31日前退出。"),
    Topic("summary", re.compile(
        r"主要内容|讲了什么|说了什么|讲的什么|是什么意思|概括|总结|核心|要点|关于什么|"
        r"(通知|文件)[^，。？]{0,6}(干什么|干嘛|做什么|是什么|讲什么|说什么|讲啥|说啥)"), 0,
          ("分步取消",), "这份通知是关于水平评价类技能人员职业资格分批退出国家职业资格目录的安排。"),
]
_PROMPT_LEAK = re.compile(r"系统提示|提示词|system prompt|你的指令|你的规则|内部指令|prompt", re.I)
_OWN_JOB = re.compile(r"我们?(这|那)?(个|行|种)?的?(证|工种|职业|行业|这行)|俺们?|这行|这个工种|我这个|我们这个|我们那个|我干的|我做的|我的工作")
_SPECIFIC_TOPICS = {"validity", "exam", "students", "future", "centres", "management", "law"}
_ABOUT_NOTICE = re.compile(r"通知|文件|这份|本文|此文|文号|发文|印发|notice|document")
_SAME_ITEM = re.compile(r"同一项|这一项|该项|同项|同一个序号|一项里|这项")
_JOINTLY = re.compile(r"共同|一起|同时|联合|都负责|均负责|共管|合管")
_NARROWING = re.compile(r"^(其中|这些|里面|当中|这里面|它们|上述|以上)")
_MIXED = re.compile(r"不同批次|分属|混合|既有第一批|同时有|两批都有|批次不同的项|批次不一样的项|跨批")
# Words that make a question about this notice even when no entity or topic is found.
_DOMAIN = re.compile(r"职业资格|退出目录|水平评价|技能人员|等级认定|职业技能|鉴定|目录|技能人才|这个通知|该通知|80号|人社厅发")


@dataclass(frozen=True)
class Interpretation:
    text: str
    mentions: Mentions
    wants: frozenset[str]
    topics: tuple[Topic, ...]
    header_facts: tuple[str, ...]
    unsupported: bool
    injection: bool
    context_from: str | None = None  # the earlier question a follow-up was resolved against

    def has_anchor(self) -> bool:
        m = self.mentions
        return bool(m.has_subject() or m.batches or m.clauses or self.header_facts or self.topics)


@dataclass
class Draft:
    """An answer being composed: sentences and the citations they rest on, in order, without duplicates."""

    parts: list[str] = field(default_factory=list)
    citations: "OrderedDict[tuple, Citation]" = field(default_factory=OrderedDict)
    answered: bool = True

    def say(self, text: str) -> None:
        self.parts.append(text)

    def cite(self, citation: Citation) -> None:
        key = citation.key()
        if key in self.citations:
            old = self.citations[key]
            if citation.quote and citation.quote not in old.quote:
                self.citations[key] = old.model_copy(update={"quote": f"{old.quote}\n{citation.quote}".strip()})
        else:
            self.citations[key] = citation

    def text(self) -> str:
        return "".join(self.parts)


def _clean(sentence: str) -> str:
    """A clause sentence for reading: the scan's spaces around numbers removed."""
    return re.sub(r"\s*(\d+)\s*", r"\1", sentence)


class GroundedAnswerer:
    """Understands a question (with its history), finds the records it is about and composes the answer."""

    def __init__(self, corpus: Corpus, linker: EntityLinker, retriever: HybridRetriever) -> None:
        self.corpus = corpus
        self.linker = linker
        self.retriever = retriever
        self.rows_by_occupation: dict[str, list[AnnexRow]] = {}
        for row in corpus.annex_rows:
            self.rows_by_occupation.setdefault(row.occupation, []).append(row)
        self.header = dict(header_fact_texts(corpus))
        self.max_item = max(corpus.item_numbers())

    # ---- understanding ---------------------------------------------------------------------

    def understand(self, text: str) -> Interpretation:
        mentions = self.linker.run(text)
        wants = frozenset(k for k, rx in _WANTS_RE.items() if rx.search(text))
        if len(mentions.occupations) >= 2 and re.search(r"和|与|跟|还是|及|、|vs|比", text):
            wants |= {"compare"}
        has_subject = mentions.has_subject()
        topics = tuple(t for t in TOPICS if t.pattern.search(text))
        header = tuple(k for k, rx in _HEADER_RE if rx.search(text))
        if "annex_title" in header:
            header = tuple(h for h in header if h != "title")
        if (has_subject or mentions.batches) and not _ABOUT_NOTICE.search(text):
            header = tuple(h for h in header if h not in ("title", "disclosure", "issuer"))
        return Interpretation(
            text=text, mentions=mentions, wants=wants, topics=topics, header_facts=header,
            unsupported=bool(_UNSUPPORTED.search(text)), injection=bool(_INJECTION.search(text)),
        )

    def resolve(self, current: Interpretation, history: list[Turn]) -> Interpretation:
        """A follow-up borrows the subject (and, when it asks nothing new, the question) of an earlier turn."""
        users = [t.content for t in history if t.role == "user"]
        if not users:
            return current
        m = current.mentions
        same_item = bool(_SAME_ITEM.search(current.text)) and not (m.occupations or m.items)
        needs_subject = same_item or not (m.has_subject() or m.batches or m.clauses or current.header_facts) and (
            current.wants or _FOLLOW_UP.search(current.text) or _SAME_ITEM.search(current.text)
        ) and not m.unknown_names
        needs_question = (m.has_subject() or m.batches) and not (current.wants - {"withdrawn"}) and (
            len(current.text) <= 14 or _FOLLOW_UP.search(current.text)
        ) and not current.topics
        narrows = bool(_NARROWING.match(current.text)) and not (m.occupations or m.items)
        if narrows and not m.departments:
            needs_subject = True  # 它们的实施部门一样吗？ — the subject of the earlier turn, whatever it was
        if not (needs_subject or needs_question or narrows):
            return current
        for earlier in reversed(users):
            prev = self.understand(normalize(earlier))
            pm = prev.mentions
            if narrows and (pm.items or pm.batches) and not pm.occupations:
                items = pm.items or tuple(dict.fromkeys(self.rows_by_occupation[o][0].item for o in pm.occupations))
                return replace(current, mentions=replace(m, items=items, batches=m.batches or pm.batches),
                               context_from=earlier)
            if needs_subject and (pm.occupations or pm.items):
                # 森林的那个呢？ after 消防员: a part of another name in the same item picks that occupation.
                items = set(pm.items) | {self.rows_by_occupation[o][0].item for o in pm.occupations}
                neighbours = {r.occupation for r in self.corpus.annex_rows if r.item in items} - set(pm.occupations)
                picked = self.linker.by_name_parts(current.text, among=neighbours) if neighbours else None
                if picked:
                    return replace(current, mentions=replace(m, occupations=(picked[1],)), context_from=earlier)
            if needs_subject and (pm.has_subject() or pm.batches):
                return replace(current, mentions=replace(
                    m, occupations=pm.occupations, items=pm.items, departments=pm.departments,
                    batches=m.batches if same_item else pm.batches, fuzzy=pm.fuzzy), context_from=earlier)
            if needs_question and (prev.wants or prev.topics):
                return replace(current, wants=current.wants | prev.wants,
                               topics=current.topics or prev.topics, context_from=earlier)
        return current

    # ---- the stage ---------------------------------------------------------------------------

    def run(self, question: str, history: list[Turn], id=None) -> Grounding:
        text = normalize(question)
        interp = self.resolve(self.understand(text), history)
        draft, rows, used = self.compose(interp)
        standalone = text if not interp.context_from else f"{normalize(interp.context_from)} {text}"
        pinned = self.pinned_evidence(draft, rows, used)
        evidence = self.retriever.run(standalone, pinned=pinned)
        answer = Answer(id=id, question=question, answer=draft.text(), answered=draft.answered,
                        citations=list(draft.citations.values()))
        return Grounding(question=question, standalone_question=standalone, evidence=evidence, rows=rows,
                         offline=answer)

    @staticmethod
    def pinned_evidence(draft: Draft, rows: list[AnnexRow], used: list[str]) -> list[str]:
        """Evidence the answer rests on, first one unit per citation in the answer's order, then the rest."""
        row_ids = [f"annex-{r.position}" for r in rows]
        first = []
        for c in draft.citations.values():
            if c.source == "annex":
                ids = [f"annex-{r.position}" for r in rows if r.item == c.item]
            elif c.clause is None:
                ids = [u for u in used if u.startswith("header-")]
            else:
                ids = [u for u in used if u.startswith(f"clause-{c.clause}-")]
            first += ids[:1]
        return list(dict.fromkeys(first + row_ids + used))

    def compose(self, q: Interpretation) -> tuple[Draft, list[AnnexRow], list[str]]:
        """Pick the one way to answer this question. Returns the draft, the rows it is about, evidence ids used."""
        d = Draft()
        m = q.mentions
        used: list[str] = []
        bad_clause = [n for n in m.clauses if not 0 <= n <= 6]
        bad_item = [n for n in m.items if not 1 <= n <= self.max_item]
        other_years = [y for y in re.findall(r"(20\d\d)年?", q.text) if y not in ("2019", "2020")]
        specific_topics = tuple(t for t in q.topics if t.name in _SPECIFIC_TOPICS)
        if bad_clause and not m.has_subject():
            return self.decline(d, f"通知正文只有开头一段和第一条至第六条，没有第{bad_clause[0]}条。"), [], used
        if bad_item:
            return self.decline(d, f"附件只有第1项至第{self.max_item}项，没有第{bad_item[0]}项。"), [], used
        if NO_BATCH in m.batches:
            d = self.decline(d, "通知只安排了两批退出：第一批拟于2020年9月30日前退出，第二批拟于2020年12月31日前退出，"
                                "另有7个职业拟依法调整为准入类职业资格；通知中没有第三批或其他批次。")
            d.cite(self.clause_citation(2, ("第一批退出", "第二批退出")))
            return d, [], used
        if q.injection and (not q.has_anchor() or _PROMPT_LEAK.search(q.text)):
            return self.decline(d, "我只能依据通知原文回答问题，不能改变回答规则。"), [], used
        if m.unknown_names and not (m.occupations or m.items):
            names = "、".join(f"「{n}」" for n in m.unknown_names[:3])
            return self.decline(d, f"附件所列的76项水平评价类技能人员职业资格中没有{names}，这份通知没有涉及它的退出安排，"
                                   "我无法据此回答，也不会按相近的职业推测。"), [], used
        if not m.occupations and not m.items:
            if other_years:
                return self.decline(d, f"这份通知只涉及2020年的退出安排，没有涉及{other_years[0]}年的情况。"), [], used
            if q.unsupported:
                return self.decline(d, "这份通知没有涉及报名办法、费用、证书查询等具体办理事项。"), [], used
        if q.header_facts and (not m.has_subject() or _ABOUT_NOTICE.search(q.text)):
            self.answer_header(d, q, used)
            return d, [], used
        if m.occupations and _SAME_ITEM.search(q.text) and q.context_from:
            q = replace(q, mentions=replace(m, occupations=(), items=tuple(
                dict.fromkeys(self.rows_by_occupation[o][0].item for o in m.occupations))))
            m = q.mentions
        if m.occupations:
            return d, self.answer_occupations(d, q, used), used
        if m.items:
            return d, self.answer_items(d, q, used), used
        if _OWN_JOB.search(q.text) and ({"batch", "deadline", "departments", "withdrawn"} & q.wants) \
                and not (m.departments or m.batches):
            d.answered = False
            d.say("我没能从问题中确定您说的是附件中的哪个职业，不能替您猜测它的批次。请告诉我职业（工种）的名称，"
                  "例如“汽车维修工是第几批？”；也可以在“附件目录”中按关键词查找。")
            self.answer_topics(d, tuple(t for t in TOPICS if t.name == "schedule"), used)
            return d, [], used
        if specific_topics and not ({"list", "count"} & q.wants):
            self.answer_topics(d, specific_topics + tuple(t for t in q.topics if t not in specific_topics), used)
            return d, [], used
        if m.departments:
            return d, self.answer_departments(d, q, used), used
        if _MIXED.search(q.text):
            return d, self.answer_mixed_items(d, used), used
        if len([b for b in m.batches if b in (BATCH_1, BATCH_2)]) >= 2 and (
                {"count", "compare"} & q.wants or re.search(r"76|80|为什么|为何", q.text)):
            self.answer_overview(d, used)
            return d, [], used
        if m.batches:
            return d, self.answer_batches(d, q, used), used
        if m.clauses:
            self.answer_clauses(d, m.clauses, used)
            return d, [], used
        if q.topics:
            self.answer_topics(d, q.topics, used)
            return d, [], used
        if ("count" in q.wants and (_DOMAIN.search(q.text) or re.search(r"职业|几项|多少项|退出|取消|证书|工种", q.text))) or re.search(r"附件.*(多少|几)|一共.*项|总共.*项|多少项", q.text):
            self.answer_overview(d, used)
            return d, [], used
        if _DOMAIN.search(q.text) and not q.injection:
            self.answer_from_retrieval(d, q, used)
            return d, [], used
        return self.decline(d, "抱歉，这个问题不在这份通知的范围内，我无法回答。"), [], used

    # ---- composing ---------------------------------------------------------------------------

    def decline(self, d: Draft, reason: str) -> Draft:
        d.answered = False
        d.say(reason + SCOPE + EXAMPLES)
        return d

    def clause_citation(self, number: int, keys: tuple[str, ...] = ()) -> Citation:
        clause = self.corpus.clause(number)
        sentences = [s for s in clause.sentences() if not keys or any(k in s for k in keys)]
        return Citation(source="notice", clause=number, label=clause.label, quote="".join(sentences) or clause.text)

    def clause_sentence_ids(self, number: int, keys: tuple[str, ...]) -> list[str]:
        return [f"clause-{number}-{i}" for i, s in enumerate(self.corpus.clause(number).sentences())
                if any(k in s for k in keys)]

    def row_fate(self, row: AnnexRow) -> str:
        if row.is_licensed:
            return "不在两批退出之列，拟依照法定程序调整为准入类职业资格"
        return f"属于{row.batch_words}，拟于{row.deadline}退出目录"

    def batch_summary(self, rows: list[AnnexRow]) -> str:
        """按批次：第一批N个（拟于…前退出）… for a list of rows, counting distinct occupations."""
        counts: "OrderedDict[str, dict]" = OrderedDict()
        for batch in (BATCH_1, BATCH_2, BATCH_LICENSED):
            names = dict.fromkeys(r.occupation for r in rows if r.batch == batch)
            if names:
                counts[batch] = names
        parts = []
        for batch, names in counts.items():
            row = next(r for r in rows if r.batch == batch)
            when = f"，拟于{row.deadline}退出目录" if row.deadline else ""
            parts.append(f"{row.batch_words}{len(names)}个{when}")
        return "按批次：" + "；".join(parts) + "。"

    def cite_batches(self, d: Draft, rows: list[AnnexRow], used: list[str]) -> None:
        keys = []
        if any(r.batch == BATCH_1 for r in rows):
            keys.append("第一批退出")
        if any(r.batch == BATCH_2 for r in rows):
            keys.append("第二批退出")
        if any(r.is_licensed for r in rows):
            keys.append("调整为准入类")
        d.cite(self.clause_citation(2, tuple(keys)))
        used += self.clause_sentence_ids(2, tuple(keys))
        if any(r.is_licensed for r in rows):
            d.cite(self.clause_citation(6, ("调整为准入类",)))
            used += self.clause_sentence_ids(6, ("调整为准入类",))

    def cite_rows(self, d: Draft, rows: list[AnnexRow]) -> None:
        for row in rows:
            d.cite(Citation(source="annex", item=row.item, label=row.label, quote=row.quote()))

    def answer_occupations(self, d: Draft, q: Interpretation, used: list[str]) -> list[AnnexRow]:
        m = q.mentions
        if m.fuzzy:
            d.say("".join(f"（按附件中的「{name}」理解您说的「{typed}」。）" if typed != name
                          else f"（按附件中的「{name}」理解您的问题。）" for typed, name in m.fuzzy))
        rows: list[AnnexRow] = []
        groups = [(name, self.rows_by_occupation[name]) for name in m.occupations]
        asserted = [b for b in m.batches if b != NO_BATCH]
        if len(groups) == 1 and asserted:
            actual = {r.batch for r in groups[0][1]}
            d.say("是的。" if set(asserted) <= actual else "不是。")
        for name, occ_rows in groups:
            row = occ_rows[0]
            repeat = f"（附件第{row.item}项中「{name}」列了{len(occ_rows)}次）" if len(occ_rows) > 1 else ""
            d.say(f"「{name}」列在附件第{row.item}项「{row.qualification}」{repeat}，实施部门为{row.departments_text()}，"
                  f"{self.row_fate(row)}。")
            rows += occ_rows
        if "category" in q.wants and not any(r.is_licensed for r in rows):
            d.say(f"附件《{self.corpus.header.annex_title}》所列的都是水平评价类技能人员职业资格。")
        if any(r.is_licensed for r in rows):
            d.say("按通知第二条，与公共安全、人身健康、生命财产安全等密切相关的职业（工种）拟依法调整为准入类职业资格；"
                  "第六条要求有关单位配合做好相关法律法规制定修订工作。")
        if len(groups) >= 2 and ("compare" in q.wants or "batch" in q.wants or "deadline" in q.wants):
            fates = {self.row_fate(g[1][0]) for g in groups}
            if len(fates) == 1:
                d.say("两者批次相同。" if len(groups) == 2 else "它们批次相同。")
            else:
                d.say("两者批次不同。" if len(groups) == 2 else "它们批次不完全相同。")
        if len(groups) >= 2 and "departments" in q.wants:
            same = len({g[1][0].departments for g in groups}) == 1
            d.say(("两者" if len(groups) == 2 else "它们") + ("的实施部门相同。" if same else "的实施部门不完全相同。"))
        self.cite_rows(d, rows)
        self.cite_batches(d, rows, used)
        withdrawn = [r for r in rows if not r.is_licensed]
        extra = [t for t in TOPICS if t.name in ("validity", "exam", "students", "future")
                 and (t.name in q.wants or t in q.topics)]
        if withdrawn and extra:
            self.answer_topics(d, tuple(extra[:2]), used)
        if m.unknown_names:
            pass
        if q.unsupported:
            d.answered = False
            d.say("您问的其他内容（如工资、考试科目、报名办法等）这份通知没有涉及，我无法回答。")
        return rows

    def answer_items(self, d: Draft, q: Interpretation, used: list[str]) -> list[AnnexRow]:
        rows: list[AnnexRow] = []
        for item in q.mentions.items:
            item_rows = self.corpus.rows_of_item(item)
            groups: "OrderedDict[tuple, list[AnnexRow]]" = OrderedDict()
            for r in item_rows:
                groups.setdefault((r.departments, r.batch), []).append(r)
            parts = []
            for (_, _), g in groups.items():
                names = "、".join(dict.fromkeys(r.occupation for r in g))
                parts.append(f"{names}（实施部门：{g[0].departments_text()}；{self.row_fate(g[0])}）")
            distinct = len(dict.fromkeys(r.occupation for r in item_rows))
            d.say(f"附件第{item}项「{item_rows[0].qualification}」包括{distinct}个职业：" + "；".join(parts) + "。")
            fates = OrderedDict()
            for r in item_rows:
                fates.setdefault(r.batch_words, dict.fromkeys([]))[r.occupation] = None
            if len(fates) > 1:
                d.say("其中" + "，".join(f"{w}{len(names)}个" for w, names in fates.items()) + "。")
            for dept in q.mentions.departments:
                negated = re.search(rf"(不是|不归|不由|除了|非)[^，。？]{{0,4}}{re.escape(dept[:2])}", q.text) or \
                    re.search(r"不是|不归|不由|除了", q.text)
                chosen = [r for r in item_rows if (dept in r.departments) != bool(negated)]
                names = "、".join(f"{r.occupation}（{r.departments_text()}）" for r in chosen) or "没有"
                d.say(f"其中实施部门{'不包含' if negated else '包含'}{dept}的：{names}。")
            rows += item_rows
        self.cite_rows(d, rows)
        self.cite_batches(d, rows, used)
        return rows

    def answer_departments(self, d: Draft, q: Interpretation, used: list[str]) -> list[AnnexRow]:
        rows: list[AnnexRow] = []
        batches = [b for b in q.mentions.batches if b != NO_BATCH]
        departments = [[d] for d in q.mentions.departments]
        if len(q.mentions.departments) >= 2 and _JOINTLY.search(q.text):
            departments = [list(q.mentions.departments)]  # 共同负责: rows naming all of them
        for depts in departments:
            dept = "、".join(depts) if len(depts) == 1 else "、".join(depts) + "（同时包含）"
            dept_rows = [r for r in self.corpus.annex_rows if all(x in r.departments for x in depts)
                         and (not batches or r.batch in batches)]
            scope = "".join({BATCH_1: "第一批", BATCH_2: "第二批"}.get(b, "拟调整为准入类") for b in batches)
            if not dept_rows:
                d.say(f"附件中没有由{dept}实施的{scope}职业。")
                continue
            by_item: "OrderedDict[int, list[AnnexRow]]" = OrderedDict()
            for r in dept_rows:
                by_item.setdefault(r.item, []).append(r)
            listing = "；".join(
                f"第{item}项 " + "、".join(f"{r.occupation}（{r.batch_words}）" for r in g) for item, g in by_item.items()
            )
            count = len(dict.fromkeys(r.occupation for r in dept_rows))
            d.say(f"附件中实施部门包含{dept}的{scope}职业共{count}个，涉及{len(by_item)}项：{listing}。"
                  + self.batch_summary(dept_rows))
            rows += dept_rows
        if len(rows) <= 40:
            self.cite_rows(d, rows)
        else:  # a very long list rests on the annex as a whole; cite the items, without row quotes
            for item in dict.fromkeys(r.item for r in rows):
                d.cite(Citation(source="annex", item=item, label=f"附件第{item}项",
                                quote=self.corpus.rows_of_item(item)[0].qualification))
        self.cite_batches(d, rows, used)
        return rows

    def batch_numbers(self, batch: str) -> tuple[int, int]:
        """(items, occupations) as clause 二 states them for a batch."""
        word = {BATCH_1: "第一批", BATCH_2: "第二批"}[batch]
        sentence = next(s for s in self.corpus.clause(2).sentences() if word in s)
        items, occupations = re.findall(r"(\d+)\s*项职业资格（涉及\s*(\d+)\s*个职业", sentence)[0]
        return int(items), int(occupations)

    def answer_batches(self, d: Draft, q: Interpretation, used: list[str]) -> list[AnnexRow]:
        rows: list[AnnexRow] = []
        wants = q.wants
        only_when = "deadline" in wants and not ({"list", "count"} & wants)
        # The batch sentence of clause 二 is what a batch answer rests on first; the annex items follow.
        self.cite_batches(d, [r for r in self.corpus.annex_rows if r.batch in q.mentions.batches], used)
        for batch in q.mentions.batches:
            batch_rows = [r for r in self.corpus.annex_rows if r.batch == batch]
            by_item: "OrderedDict[int, list[AnnexRow]]" = OrderedDict()
            for r in batch_rows:
                by_item.setdefault(r.item, []).append(r)
            if batch == BATCH_LICENSED:
                names = "、".join(f"{r.occupation}（附件第{r.item}项，{r.departments_text()}）" for r in batch_rows)
                d.say(f"附件中拟依照法定程序调整为准入类职业资格的职业共{len(batch_rows)}个：{names}。"
                      "它们与公共安全、人身健康、生命财产安全等密切相关，不按批次退出目录，而是依法调整为准入类职业资格。")
            else:
                word = {BATCH_1: "第一批", BATCH_2: "第二批"}[batch]
                deadline = batch_rows[0].deadline
                n_items, n_occ = self.batch_numbers(batch)
                sentence = next(x for x in self.corpus.clause(2).sentences() if f"{word}退出" in x)
                d.say(f"{word}拟于{deadline}退出目录，共{n_items}项职业资格（涉及{n_occ}个职业）。"
                      f"通知第二条原文：「{_clean(sentence)}」")
                if not only_when:
                    distinct = len(dict.fromkeys(r.occupation for r in batch_rows))
                    dup = f"（其中第25项的重冶金法冶炼工列了两次，不同职业{distinct}个）" if distinct != len(batch_rows) else ""
                    listing = "；".join(
                        f"第{item}项 {g[0].qualification}：" + "、".join(dict.fromkeys(r.occupation for r in g))
                        for item, g in by_item.items()
                    )
                    d.say(f"附件中标为{word}的共{len(by_item)}项、{len(batch_rows)}行职业{dup}：{listing}。")
            rows += batch_rows
            for item, g in by_item.items():
                d.cite(Citation(source="annex", item=item, label=f"附件第{item}项",
                                quote="；".join(r.quote() for r in g)))
        return rows

    def answer_header(self, d: Draft, q: Interpretation, used: list[str]) -> None:
        h = self.corpus.header
        values = {
            "doc_number": f"这份通知的文号是{h.doc_number}。",
            "issue_date": f"这份通知由{h.issuer}于{h.issue_date}印发。",
            "contact": f"通知注明的联系单位是{h.contact}（人力资源社会保障部职业能力建设司）。",
            "issuer": f"发文机关是{h.issuer}（文号{h.doc_number}）。",
            "recipients": f"通知的主送单位是：{h.recipients}。",
            "disclosure": f"通知注明“此件{h.disclosure}”，即主动公开。",
            "title": f"通知的标题是《{h.title}》，文号{h.doc_number}。",
            "annex_title": f"通知有一个附件：《{h.annex_title}》（水平评价类{self.max_item}项），逐项列出职业资格名称、职业（工种）、实施部门和退出批次。",
        }
        for fact in q.header_facts:
            d.say(values[fact])
            d.cite(Citation(source="notice", clause=None, label=HEADER_LABEL, quote=self.header[fact]))
            used.append(f"header-{fact}")

    def answer_clauses(self, d: Draft, numbers: tuple[int, ...], used: list[str]) -> None:
        for n in numbers:
            clause = self.corpus.clause(n)
            d.say(f"通知{CLAUSE_LABELS[n]}原文：「{_clean(clause.text)}」")
            d.cite(Citation(source="notice", clause=n, label=clause.label, quote=clause.text))
            used += [f"clause-{n}-{i}" for i in range(len(clause.sentences()))][:3]

    def answer_topics(self, d: Draft, topics: tuple[Topic, ...], used: list[str]) -> None:
        for t in topics[:3]:
            quote = [s for s in self.corpus.clause(t.clause).sentences() if any(k in s for k in t.sentence_keys)]
            if t.quote_from:
                quote = [s[s.index(t.quote_from):] if t.quote_from in s else s for s in quote]
            lead = t.lead.rstrip("：:")
            lead += "" if lead.endswith("。") else "。"
            d.say(f"{lead}通知{CLAUSE_LABELS[t.clause]}原文：「{_clean(''.join(quote))}」")
            d.cite(Citation(source="notice", clause=t.clause, label=CLAUSE_LABELS[t.clause], quote="".join(quote)))
            used += self.clause_sentence_ids(t.clause, t.sentence_keys)
            for number, keys in t.also:
                more = [x for x in self.corpus.clause(number).sentences() if any(k in x for k in keys)]
                d.say(f"通知{CLAUSE_LABELS[number]}还要求：「{_clean(''.join(more))}」")
                d.cite(Citation(source="notice", clause=number, label=CLAUSE_LABELS[number], quote="".join(more)))
                used += self.clause_sentence_ids(number, keys)

    def answer_overview(self, d: Draft, used: list[str]) -> None:
        rows = self.corpus.annex_rows
        n1, o1 = self.batch_numbers(BATCH_1)
        n2, o2 = self.batch_numbers(BATCH_2)
        licensed = [r for r in rows if r.is_licensed]
        distinct = len({r.occupation for r in rows})
        d.say(f"附件《{self.corpus.header.annex_title}》标明水平评价类共{self.max_item}项，按序号列出第1至第{self.max_item}项，"
              f"共{len(rows)}行职业（第25项的重冶金法冶炼工列了两次，不同职业{distinct}个）。"
              f"通知第二条写明：第一批{n1}项职业资格（涉及{o1}个职业）拟于2020年9月30日前退出，"
              f"第二批{n2}项职业资格（涉及{o2}个职业）拟于2020年12月31日前退出；"
              f"另有{len(licensed)}个职业拟依法调整为准入类职业资格。"
              f"注意：{n1}+{n2}={n1 + n2}项多于附件的{self.max_item}项。按附件逐行核对，"
              f"{self.mixed_items_text()}这些项同一项中既有第一批又有第二批的职业，两批各计一次；"
              f"{self.licensed_only_items_text()}只含拟调整为准入类的职业，不在两批之中。")
        d.cite(self.clause_citation(2, ("第一批退出", "第二批退出")))
        d.cite(Citation(source="notice", clause=None, label=HEADER_LABEL, quote=self.header["annex_title"]))
        used += self.clause_sentence_ids(2, ("第一批退出", "第二批退出")) + ["header-annex_title"]

    def mixed_items(self) -> list[int]:
        return [i for i in self.corpus.item_numbers()
                if len({r.batch for r in self.corpus.rows_of_item(i)} & {BATCH_1, BATCH_2}) == 2]

    def mixed_items_text(self) -> str:
        return "第" + "、".join(str(i) for i in self.mixed_items()) + "项"

    def licensed_only_items_text(self) -> str:
        items = [i for i in self.corpus.item_numbers() if all(r.is_licensed for r in self.corpus.rows_of_item(i))]
        return "第" + "、".join(str(i) for i in items) + "项"

    def answer_mixed_items(self, d: Draft, used: list[str]) -> list[AnnexRow]:
        """Items whose rows fall into different batches (or partly into 准入类)."""
        rows: list[AnnexRow] = []
        parts = []
        for item in self.corpus.item_numbers():
            item_rows = self.corpus.rows_of_item(item)
            if len({r.batch for r in item_rows}) < 2:
                continue
            groups: "OrderedDict[str, list[str]]" = OrderedDict()
            for r in item_rows:
                groups.setdefault(r.batch_words, []).append(r.occupation)
            parts.append(f"第{item}项 {item_rows[0].qualification}（" + "；".join(
                f"{w}：{'、'.join(dict.fromkeys(n))}" for w, n in groups.items()) + "）")
            rows += item_rows
        d.say(f"附件中有{len(parts)}项的职业分属不同批次，批次要按职业逐行看：" + "；".join(parts) + "。")
        self.cite_rows(d, rows)
        self.cite_batches(d, rows, used)
        return rows

    def answer_from_retrieval(self, d: Draft, q: Interpretation, used: list[str]) -> None:
        """A question in the notice's own words that no rule recognised: quote the best clause sentences."""
        hits = [e for e in self.retriever.run(q.text, k=6) if e.clause is not None][:2]
        if not hits:
            self.decline(d, "通知中没有找到能回答这个问题的内容。")
            return
        d.say("通知中与您的问题最相关的原文如下：")
        for e in hits:
            d.say(f"{e.label}：「{_clean(e.text)}」")
            d.cite(e.citation())
            used.append(e.doc_id)

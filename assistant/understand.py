"""Understand stage: what a question (with its history) is about and what it asks.

Subjects first: the linker finds every span that names a job, qualification or certificate and says how it was
linked (exact, alias, abbreviation, typo, cue, none). Then what is asked: cue patterns for the attributes and
topics whose words the question uses, and the nearest exemplar questions for a new phrasing of a known intent.
A follow-up borrows the subject of an earlier turn only when it names none of its own."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .intents import DECLINE_INTENTS, IntentClassifier
from .link import EntityLinker, MatchKind, Mentions
from .normalize import normalize
from .profile import NoticeProfile
from .records import AnnexRow, Corpus, Turn

# What the question asks about an occupation or the notice (attributes).
_WANTS = {
    "departments": r"部门|单位|谁负责|谁管|归谁|哪家|主管|实施|组织|负责|管理|发证|归口|department|who runs|who is responsible",
    "deadline": r"什么时候|何时|哪天|几号|时间|日期|截止|期限|多久|deadline|when|啥时|几时|哪年|几月|之前|以前|前退",
    "batch": r"第几批|哪一?批|几批|批次|batch|分批|一批|二批|两批",
    "category": r"准入|水平评价|什么类|哪一?类|类别|性质",
    "item": r"第几项|哪一?项|序号|属于什么职业资格|哪个职业资格|which item",
    "list": r"哪些|有什么|有啥|什么职业|什么工种|列表|清单|名单|都有|包括|包含|列出|列一下|列举|全部|所有|list|which|涉及",
    "count": r"多少|几个|几项|几种|数量|how many|总共|一共|共有|共计|总数",
    "compare": r"一样|相同|区别|不同|同一批|比较|哪个早|哪个先|哪个晚|差别|vs|对比|一致",
    "validity": r"有用|有效|作废|还能用|失效|管用|白考|作数|认可|承认|没用|废了|还算|还认|还灵|valid",
    "future": r"以后|今后|将来|取消后|退出后|之后|还能考|怎么考|还考|等级证书|等级认定|社会化|谁来",
    "exam": r"报名|报了|考试|鉴定考试|退费|退钱|考完|考过|考了|还没发|没拿到|没领到",
    "students": r"学生|学校|院校|学徒|学员|在读|毕业|结业|招生",
    "withdrawn": r"退出|取消|没了|还有吗|还在|保留|撤销|废止|还有用|withdraw|remov|cancel|abolish",
}
_WANTS_RE = {k: re.compile(v, re.I) for k, v in _WANTS.items()}
# What the notice can tell about an occupation; a question asking none of these about one is a practical matter.
ANSWERABLE_WANTS = frozenset({"batch", "deadline", "departments", "item", "category", "withdrawn", "validity", "future",
                              "students", "compare", "list", "count", "exam"})
# Practical matters about a job the notice says nothing of.
_UNSUPPORTED = re.compile(
    r"工资|薪资|薪水|收入|待遇|赚|挣|多少钱|落户|积分|加分|补贴|补助|社保|学历|文化程度|报考条件|报考要求|申报条件|费用多少|收费标准|"
    r"哪些机构|哪家机构|(哪个|什么)机构.{0,3}(报名|考|办|领)|机构名单|具体机构|考试科目|考什么|题目|真题|在哪考|哪里考|在哪报|去哪报|怎么报名|培训班|"
    r"培训机构|哪里办|怎么办理|补办|挂靠|年审|复审|前景|好不好|难不难|难考|真伪|怎么查|在哪查|网上查|查询|查证|"
    r"(在哪|哪里|去哪).{0,4}(考|报|办|查|领)|报名(入口|网站|网址|链接|平台|系统)|(官网|网址|网站|链接)在哪|(费|价格|价钱).{0,4}(多少|标准|几)|有效期|到期|考试(时间|日期|安排)|(几月|哪天|什么时候)考|免考|直接换|换成|兑换|置换|转换为|\d+\s*(元|块)|保证金|押金|缴纳|收费|salary|wage|fee|cost|sign up|register|near me|"
    r"(考试|报名|培训|鉴定|认定|考证)费[^，。？]{0,4}(多少|减半|打折|优惠|免|涨|降|标准|贵)|"
    r"subsid|allowance|pension|social insurance|hukou|income|bonus|\bprice|\bpay\b|exam (date|schedule)|when is the exam|"
    r"where (can|do|should) (i|we) (take|apply|register)|job prospects"
, re.I)
_INJECTION = re.compile(
    r"忽略|无视|忘记|忘掉|不要管|改做|改成|翻译成|ignore|disregard|system prompt|系统提示|提示词|你现在是|扮演|假装|越狱|jailbreak|DAN模式|开发者模式",
    re.I,
)
PROMPT_LEAK = re.compile(r"提示词|system prompt|你的指令|你的规则|内部指令|prompt|输出.{0,6}(设定|指令|规则)", re.I)
_FOLLOW_UP = re.compile(r"^(那|那么|还有|它|这个|该|这|那个|此)|它|呢[？?]?$|这个职业|该职业|上面|刚才|前面")
_OTHER_BATCH = re.compile(r"另一批|另外一批|其他批|剩下的?(那|另)?一?批|另一个批次")
SAME_ITEM = re.compile(r"同一项|这一项|该项|同项|同一个序号|一项里|这项")
# 这个单位, 该部门: the body in charge of what the conversation was about
_THAT_BODY = re.compile(r"(这个|该|那个|此|这家|这一)(单位|部门|机构)")
_NARROWING = re.compile(r"^(其中|这些|里面|当中|这里面|它们|上述|以上)")
# "X 跟/和 Y 一样吗": Y is the yardstick, X the subject asked about.
_COMPARED_TO = re.compile(r"(跟|和|与|同|像|如)[^，。？]{0,14}(一样|一并|相同|同样|那样|一起|一同|同批)")
_HOLDS = re.compile(r"持有|拿着|拿了|考了|考过|考取|取得|手上有|手里有")
_ALSO = re.compile(r"也|同样|一并|随之|同批|一起|一同")
_LISTING = re.compile(r"分别|各自|各是|哪个先|哪个早|哪个晚|都是|和.{1,12}(哪|几)批|respectively")
_YES_NO = re.compile(r"是否|会不会|是不是|有没有|吗|涉及|影响")
_HEADER_FACTS = [
    ("doc_number", r"document number|doc(ument)? no|文号|发文字号|字号|几号文|文件编号|文件号|编号"),
    ("issue_date", r"(印发|发布|发文|下发|出台|颁布|发出)(的)?(时间|日期|日子)|(哪天|哪一天|什么时候|何时|哪年|几月|几号|啥时候)(印发|发布|发文|下发|出台|颁布|发的)|印发日期|成文日期|issue date|issued on|issued in|date of issue|when was .{0,40}issued|release date|published (on|in)|\d+月\d*[日号份]?(印发|发布|下发|发的|出台)|(通知|文件|这份|本文|此文)[^，。？]{0,6}\d{4}年[^，。？]{0,4}(印发|发布|下发|发的|出台)|(几月|哪个月|哪月).{0,3}(印发|发布|下发|发的|出台)"),
    ("contact", r"联系单位|联系谁|联系哪|咨询哪|哪个司|找谁|找哪|联系部门|联系方式|问谁|联系人|contact"),
    ("issuer", r"发文机关|谁发的|谁发布|哪个部门发(的|布)|哪个单位发(的|布)|谁印发|发文单位|发布单位|发文部门|办公厅发|国务院发|发文的是|issued by|who issued|which (office|department|ministry|agency|body|authority|organi[sz]ation) (issued|published|released)|issuing (office|department|authority|body)|(通知|文件|本文|此文)[^，。？]{0,12}(谁|哪个部门|哪个单位|哪里)[^，。？]{0,3}(发|出|下发|印发|发布)|(通知|文件)[^，。？]{0,12}发的|(谁|哪个部门|哪个单位)[^，。？]{0,4}(印发|发布|下发|发)的?(这个|这份|此|该)?(通知|文件)"),
    ("recipients", r"主送|发给谁|发给哪|下发给|下发到|送达|面向哪些|发给了(谁|哪)|(通知|文件).{0,6}发给|部队|军队|军委|兵团|recipient"),
    ("disclosure", r"公开|保密|密级|内部文件|\bpublic\b|confidential"),
    ("annex_title", r"附件(的)?(名称|标题|名字|叫什么|是什么|是啥|讲什么)|有附件|有没有附件|附件有"),
    ("title", r"标题|全称|文件名|叫什么|名称是什么|题目是|什么文件|哪个文件"),
]
_HEADER_RE = [(k, re.compile(v, re.I)) for k, v in _HEADER_FACTS]
HEADER_INTENTS = frozenset(k for k, _ in _HEADER_FACTS)
# A count of something the annex lists (多少项, 几个职业), not any 多少.
COUNTED = re.compile(r"(多少|几|how many)\s*(个|种|类)?\s*(项|职业|工种|资格|occupation|item|qualification)", re.I)
ABOUT_NOTICE = re.compile(r"通知|文件|这份|本文|此文|文号|发文|印发|notice|document", re.I)


@dataclass(frozen=True)
class Topic:
    """A subject of the notice body, found by its words, answered by its lead line and the sentences that carry it."""

    name: str
    pattern: re.Pattern
    clause: int
    sentence_keys: tuple[str, ...]  # a sentence is quoted when it contains one of these
    lead: str  # the direct answer, in plain words
    also: tuple[tuple[int, tuple[str, ...]], ...] = ()  # further (clause, sentence keys) the topic rests on
    specific: bool = True  # answers a question about an occupation too (已发的证还有效吗)


TOPICS = [
    Topic("centres", re.compile(r"assessment cent|鉴定中心|鉴定站|鉴定所|鉴定机构|质量监管|监管|监督|质量.{0,6}(谁|管)|quality|supervis"), 6,
          ("鉴定中心",), "人力资源社会保障部门职业技能鉴定中心要加快职能转变，加强职业技能等级认定工作的质量监管，做好公共服务；有关单位的鉴定中心可探索向社会培训评价组织转型。"),
    Topic("students", re.compile(r"student|apprentice|school|学生|学校|院校|学徒|学员|在读|毕业|结业|招生|培养计划"), 3,
          ("职业院校",), "按职业资格证书培养计划招生的职业院校（含技工院校）和企业新型学徒，支持其执行培养培训计划，结业时能取得相应职业资格证书或职业技能等级证书。"),
    Topic("exam", re.compile(r"exam|registration|refund|考了|还没发|没发证|没拿到|没领到|报名|考试公告|鉴定考试|已报|报了|退费|退钱|退回|费用|考完|考过|考试|鉴定公告"), 3,
          ("鉴定考试公告", "已组织完成鉴定考试"),
          "已发布鉴定考试公告或已受理报名的，可按考生意愿继续考试或退回费用；已考完的，要做好证书发放。"),
    Topic("management", re.compile(r"违规|突击|严禁|鉴定质量|证书管理|乱发|滥发|纪律|发证.{0,4}要求|发放.{0,4}要求|证书发放"), 4,
          ("规范实施", "严格职业资格证书发放"), "要规范实施职业技能鉴定、严格证书发放，严禁违规、突击发放证书。"),
    Topic("law", re.compile(r"法律|法规|立法|依法|准入类是什么|什么是准入|怎么调整|如何调整|调整程序|法定程序|公共安全|人身健康|生命财产|密切相关|"
                            r"配合(开展|做|做好)?[^，。？]{0,4}(哪|什么|工作)"), 6,
          ("法律法规",), "与公共安全、人身健康、生命财产安全等密切相关的职业资格，有关单位要配合修订相关法律法规，依法调整为准入类职业资格。",
          also=((2, ("密切相关",)),)),
    Topic("validity", re.compile(
        r"valid|expire|still (work|count|use)|already issued|issued (before|earlier|previously)|previously issued|existing certificate|(已|已经|以前|之前|原来|原先|手里|手上|现有|过去|老|拿到|考到|考的|发的|取得)[^。？]{0,10}(证|证书)|"
        r"(证|证书)[^。？]{0,10}(有效|作废|有用|还能用|失效|管用|作数|认可|承认|没用|废|还算)|"
        r"(有效|作废|失效|白考)"), 4, ("继续有效",), "退出目录前已发放的职业资格证书继续有效，可作为持证者职业能力水平的证明。"),
    Topic("future", re.compile(
        r"who (issues|certif)|issue.{0,20}certificate|certificate.{0,20}after|以后|今后|将来|谁来|由谁|谁发|谁认定|谁评|按什么|"
        r"等级认定|等级证书|社会化|用人单位|评价组织|自主评价|取代|替代|代替|还能考|怎么考|还考|"
        r"企业.{0,8}(评|认定|发证)|自主|自行|自己评|自己认定|试点|遴选|培训评价组织|政府.{0,6}(认定|发证)"),
          1, ("由用人单位",), "退出目录后不再由政府或其授权的单位认定发证，改由用人单位和相关社会组织按照职业标准或评价规范开展职业技能等级认定、颁发职业技能等级证书；"
          "通知还要求推动用人单位开展技能人才自主评价，遴选发布社会培训评价组织。",
          also=((5, ("自主评价",)),)),
    Topic("why", re.compile(r"为什么|为何|意义|目的|原因|好处|why|初衷|干嘛要|为啥"), 1, ("一场革命",),
          "通知说，将技能人员水平评价由政府认定改为实行社会化等级认定，接受市场和社会认可与检验，"
          "这是推动政府职能转变、形成以市场为导向的技能人才培养使用机制的一场革命。", specific=False),
    Topic("background", re.compile(
        r"国务院|常务会议|2019|谁决定|依据|背景|由来|(什么|哪次|哪个)会议|决定的|谁定的|谁拍板|根据什么(决定|出台|制定|发|印发)|"
        # why the notice itself was issued (not why qualifications are withdrawn): its opening paragraph
        r"(发|出台|印发|下发|制定)[^，。？]{0,6}(通知|文件)[^，。？]{0,6}(为了|目的|为什么|为啥|干什么|干嘛)|"
        r"(通知|文件)的?(目的|用意|出发点)|purpose of (this|the) (notice|document)", re.I), 0, ("国务院常务会议",),
          "2019年12月，国务院常务会议决定分步取消水平评价类技能人员职业资格，推行社会化职业技能等级认定；"
          "通知为贯彻落实这一精神，统筹推进疫情防控和经济社会发展，促进就业创业。", specific=False),
    Topic("schedule", re.compile(
        r"(什么时候|何时|啥时候|哪天).{0,4}(退出|取消|完成)|分几批|几批|分批|时间安排|(什么时候|何时|什么时间|哪天|多久).{0,6}(完成|搞定|办完|做完|弄完|结束|完事)|"
        r"(完成|搞定|办完|做完|弄完|结束)[^，。？]{0,4}(时间|期限|时限)|年底前|进度|时间表|什么时候退出|何时退出|什么时候取消|啥时候|退出时间|哪年|timeline|schedule|finish"),
          2, ("拟分批", "年底前完成"),
          "水平评价类技能人员职业资格在2020年年底前分批退出目录，有关工作请于年底前完成。", specific=False),
    Topic("summary", re.compile(
        r"主要内容|讲了什么|说了什么|讲的什么|是什么意思|概括|总结|核心|要点|关于什么|what is (this|the) notice about|"
        r"(通知|文件)[^，。？]{0,6}(干什么|干嘛|做什么|是什么|讲什么|说什么|讲啥|说啥)", re.I), 0,
          ("分步取消",), "这份通知安排水平评价类技能人员职业资格分批退出国家职业资格目录，改为社会化职业技能等级认定。", specific=False),
]
TOPIC_BY_NAME = {t.name: t for t in TOPICS}


@dataclass(frozen=True)
class Interpretation:
    text: str  # normalised question
    mentions: Mentions
    wants: frozenset[str]
    topics: tuple[Topic, ...]
    header_facts: tuple[str, ...]
    unsupported: bool  # asks a practical matter the notice does not cover
    injection: bool
    intent: str | None = None  # by meaning (nearest exemplars), when the cue patterns found none
    compared_to_linked: bool = False  # the first subject is unlinked and a linked one is only its yardstick
    context_from: str | None = None  # the earlier question a follow-up was resolved against

    def has_anchor(self) -> bool:
        m = self.mentions
        return bool(m.has_subject() or m.batches or m.clauses or self.header_facts or self.topics)

    @property
    def linked_subjects(self):
        return tuple(s for s in self.mentions.subjects if s.linked)

    @property
    def declines_by_meaning(self) -> bool:
        return self.intent in DECLINE_INTENTS


class Understanding:
    """The understand stage: a typed Interpretation of one question with its history."""

    def __init__(self, corpus: Corpus, linker: EntityLinker, profile: NoticeProfile,
                 intents: IntentClassifier | None = None) -> None:
        self.corpus = corpus
        self.linker = linker
        self.profile = profile
        self.intents = intents
        self.rows_by_occupation: dict[str, list[AnnexRow]] = {}
        for row in corpus.annex_rows:
            self.rows_by_occupation.setdefault(row.occupation, []).append(row)
        self._batch_counts = {str(n): b.batch for b in profile.batches for n in (b.items, b.occupations)}

    def run(self, question: str, history: list[Turn]) -> Interpretation:
        return self.resolve(self.read(normalize(question)), history)

    def read(self, text: str) -> Interpretation:
        mentions = self.linker.run(text)
        # A count the notice gives for a batch (14项, 156个职业) names that batch.
        counted = [self._batch_counts[n] for n in re.findall(r"(?<![第\d])(\d+)\s*(?:项|个职业)", text) if n in self._batch_counts]
        if counted:
            mentions = replace(mentions, batches=tuple(dict.fromkeys(mentions.batches + tuple(counted))),
                               departments=())
        wants = frozenset(k for k, rx in _WANTS_RE.items() if rx.search(text))
        if len(mentions.occupations) >= 2 and re.search(r"和|与|跟|还是|及|、|vs|比", text):
            wants |= {"compare"}
        has_subject = mentions.has_subject()
        topics = tuple(t for t in TOPICS if t.pattern.search(text))
        header = tuple(k for k, rx in _HEADER_RE if rx.search(text))
        if "annex_title" in header:
            header = tuple(h for h in header if h != "title")
        if "issue_date" in header and not re.search(r"谁|哪个部门|哪个单位|机关|issued by|who", text, re.I):
            header = tuple(h for h in header if h != "issuer")  # 是8月份发的吧 asks when, not who
        if (has_subject or mentions.batches) and not ABOUT_NOTICE.search(text):
            header = tuple(h for h in header if h not in ("title", "disclosure", "issuer", "recipients"))
        intent = None
        asks_something_known = bool(wants & (ANSWERABLE_WANTS - {"count"}) or COUNTED.search(text) or topics or header or mentions.batches
                                    or mentions.clauses or mentions.items)
        if self.intents is not None:
            guess = self.intents.classify(text).intent
            if guess in DECLINE_INTENTS and not asks_something_known:
                intent = guess
            elif guess and guess not in DECLINE_INTENTS and not (topics or header) and not (
                    wants & {"count", "list", "batch", "departments", "item"}):
                if guess in TOPIC_BY_NAME:
                    intent, topics = guess, (TOPIC_BY_NAME[guess],)
                elif guess in HEADER_INTENTS and ABOUT_NOTICE.search(text):
                    intent, header = guess, (guess,)
        subjects = mentions.subjects
        unlinked = [s for s in subjects if not s.linked]
        linked = [s for s in subjects if s.linked]
        listing = bool(_LISTING.search(text))
        # The subject asked about is the unlinked one and the linked names are only its yardstick or premise:
        # "X 跟 Y 一样吗", "Y 第二批，X 是否也…", "持有 X 证书，是否涉及" with Y an annex name.
        # "我司HR持有中级经济师证书": a role named outside any job span (HR, an alias) holds the certificate asked
        # about; with no linked job span, the unlinked certificate is the subject.
        held = bool(unlinked and not linked and mentions.occupations and _HOLDS.search(text[:unlinked[0].start]))
        compared = held or bool(unlinked and linked and not listing and (
            _COMPARED_TO.search(text) or _ALSO.search(text) or (
                any(s.span != s.name for s in unlinked) and not any(s.span != s.name for s in linked)
                # (a job described in words, 装空调修空调的, is the one the unlinked name tries to say)
                and not any(s.kind is MatchKind.CUE for s in linked) and _YES_NO.search(text))))
        return Interpretation(
            text=text, mentions=mentions, wants=wants, topics=topics, header_facts=header,
            unsupported=any(not any(t.pattern.fullmatch(m.group()) for t in TOPICS) for m in _UNSUPPORTED.finditer(text)),
            injection=bool(_INJECTION.search(text)),
            intent=intent, compared_to_linked=compared,
        )

    def resolve(self, current: Interpretation, history: list[Turn]) -> Interpretation:
        """A follow-up borrows the subject (and, when it asks nothing new, the question) of an earlier turn.

        A subject named in the current turn always wins: a new name, even one the annex lacks, is never
        replaced by the one carried from history."""
        users = [t.content for t in history if t.role == "user"]
        if not users:
            return current
        m = current.mentions
        if _THAT_BODY.search(current.text) and not (m.departments or m.subjects or m.occupations or m.items):
            # 这个单位还负责哪些…: the department(s) of the job the conversation was about
            for earlier in reversed(users):
                pm = self.read(normalize(earlier)).mentions
                depts = tuple(dict.fromkeys(d for o in pm.occupations for r in self.rows_by_occupation.get(o, [])
                                            for d in r.departments)) or pm.departments
                if depts:
                    return replace(current, mentions=replace(m, departments=depts), context_from=earlier)
        names_own_subject = bool(m.subjects or m.occupations or m.items)
        same_item = bool(SAME_ITEM.search(current.text)) and not names_own_subject
        if _OTHER_BATCH.search(current.text) and not m.batches:
            needs_subject = True
        else:
            needs_subject = False
        needs_subject = needs_subject or same_item or not (names_own_subject or m.departments or m.batches or m.clauses
                                          or current.header_facts) and (
            current.wants or _FOLLOW_UP.search(current.text) or SAME_ITEM.search(current.text))
        needs_question = (m.has_subject() or m.batches) and not m.unlinked and not (current.wants - {"withdrawn"}) and (
            len(current.text) <= 14 or _FOLLOW_UP.search(current.text)) and not current.topics
        narrows = bool(_NARROWING.match(current.text)) and not names_own_subject
        if narrows and not m.departments:
            needs_subject = True  # 它们的实施部门一样吗？ — the subject of the earlier turn, whatever it was
        if not (needs_subject or needs_question or narrows):
            return current
        for earlier in reversed(users):
            prev = self.read(normalize(earlier))
            pm = prev.mentions
            if _OTHER_BATCH.search(current.text) and len(set(pm.batches)) == 1:
                others = tuple(b.batch for b in self.profile.batches if b.batch not in pm.batches)
                return replace(current, mentions=replace(m, batches=others), context_from=earlier)
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
                carried = tuple(s for s in pm.subjects if s.linked)
                return replace(current, mentions=replace(
                    m, occupations=pm.occupations, items=pm.items, departments=pm.departments,
                    batches=m.batches if same_item else pm.batches, fuzzy=pm.fuzzy, subjects=carried),
                    context_from=earlier)
            if needs_question and (prev.wants or prev.topics):
                return replace(current, wants=current.wants | prev.wants,
                               topics=current.topics or prev.topics, context_from=earlier)
            if pm.unlinked and needs_subject:  # the earlier subject is not in the annex: it is declined again
                return replace(current, mentions=replace(m, subjects=pm.unlinked), context_from=earlier)
        return current


def is_weak(kind: MatchKind) -> bool:
    """Links a reader must be told about (按附件中的「X」理解…), and that never get a yes or no: anything but the
    annex's own name and a reviewed alias."""
    return kind in (MatchKind.ABBREVIATION, MatchKind.TYPO, MatchKind.CUE)

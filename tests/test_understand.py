"""Subjects first: every name of a job, qualification or certificate in a question is found by its form and linked
with an explicit match kind; a name that merely contains an annex name is not that occupation."""
import random

import pytest

from assistant.config import REPO_ROOT
from assistant.link import EntityLinker, MatchKind
from assistant.normalize import normalize
from assistant.profile import NoticeProfile

BATCH_WORDS = ("第一批", "第二批", "第1批", "第2批")


@pytest.fixture(scope="module")
def profile(corpus):
    return NoticeProfile.load(corpus, REPO_ROOT / "corpus")


@pytest.fixture(scope="module")
def linker(corpus, profile):
    return EntityLinker(corpus, REPO_ROOT / "corpus" / "aliases.csv", profile)


def subjects(linker, question):
    return [(s.name, s.kind, s.occupations) for s in linker.run(normalize(question)).subjects]


@pytest.mark.parametrize("question, name, kind, occupations", [
    ("电工证什么时候退出", "电工", MatchKind.EXACT, ("电工",)),
    ("高级电工证还有用吗", "电工", MatchKind.EXACT, ("电工",)),  # a level is not a different occupation
    ("维修电工证", "维修电工", MatchKind.ALIAS, ("电工",)),  # the alias table says so
    ("信通机务员第几批", "信通机务员", MatchKind.ABBREVIATION, ("信息通信网络机务员",)),
    ("木工证哪批退", "木工", MatchKind.ABBREVIATION, ("手工木工",)),
    ("美法师证第几批", "美法师", MatchKind.TYPO, ("美发师",)),
    ("锅炉操做工第几批", "锅炉操做工", MatchKind.TYPO, ("锅炉操作工",)),
    ("驾校教练员证哪批", "驾校教练员", MatchKind.ALIAS, ("机动车驾驶教练员",)),
])
def test_linked_subjects_carry_their_match_kind(linker, question, name, kind, occupations):
    assert subjects(linker, question) == [(name, kind, occupations)]


@pytest.mark.parametrize("question, name, near", [
    ("医疗美容师是第几批", "医疗美容师", ("美容师",)),
    ("船舶电工属于哪一项", "船舶电工", ("电工",)),
    ("日式烹调师第几批退出", "日式烹调师", ("中式烹调师", "西式烹调师")),
    ("心理健康管理师在不在附件里", "心理健康管理师", ("健康管理师",)),
    ("消防设施操作员证还有用吗", "消防设施操作员", ("消防员",)),
])
def test_a_longer_name_containing_an_annex_name_is_not_that_occupation(linker, question, name, near):
    m = linker.run(normalize(question))
    assert m.occupations == ()
    [s] = m.subjects
    assert (s.name, s.kind, s.near) == (name, MatchKind.NONE, near)


def test_several_subjects_are_each_linked_or_not(linker):
    m = linker.run(normalize("焊工和电工哪个先退"))
    assert [(s.name, s.linked) for s in m.subjects] == [("焊工", False), ("电工", True)]
    assert m.occupations == ("电工",)


def test_apposition_and_workplace_are_not_modifiers(linker):
    assert linker.run(normalize("我是饭店厨师，厨师证第几批取消")).occupations == ("中式烹调师", "西式烹调师")
    assert linker.run(normalize("我是木匠 木工证哪批退")).occupations == ("手工木工",)


def test_words_about_certificates_are_not_subjects(linker):
    for q in ("退出目录前发的证书还有效吗", "职业技能等级证书谁来发", "能不能趁退出之前突击发一批证书？",
              "职业资格证书还有效吗", "鉴定考试考完了还没拿到证书"):
        assert linker.run(normalize(q)).subjects == (), q


def test_english_aliases_match_whole_words_only(linker):
    assert linker.run(normalize("when is the second batch removed")).occupations == ()
    assert linker.run(normalize("is the HR certificate still valid")).occupations == ("企业人力资源管理师",)


# ---- through the whole assistant ---------------------------------------------------------------------------

MODIFIERS = ["宠物", "医疗", "船舶", "海洋", "无人机", "智能", "跨境", "直播"]


def test_invented_longer_names_are_declined_by_name_never_answered_as_the_annex_occupation(assistant, corpus):
    """Made-up names (no table lists them) that contain an annex name: the mechanism, not a list, declines them."""
    rng = random.Random(20201121)
    names = sorted({r.occupation for r in corpus.annex_rows if "(" not in r.occupation})
    lexicon = assistant.answerer.linker.lexicon.occupations
    tried = 0
    for name in rng.sample(names, 25):
        longer = rng.choice(MODIFIERS) + name
        if longer in lexicon:
            continue
        tried += 1
        a = assistant.ask(f"{longer}是第几批退出？")
        assert not a.answered, longer
        assert longer in a.answer and not any(w in a.answer for w in BATCH_WORDS), a.answer
        assert not a.answer.startswith(("是的", "不是")), a.answer
    assert tried >= 20


@pytest.mark.parametrize("question, name", [
    ("星际导航师证什么时候退出目录？", "星际导航师"),
    ("量子调音员的证书还有效吗", "量子调音员"),
    ("我有注册测绘师资格，这个通知对我有影响吗", "注册测绘师"),
    ("中级会计专业技术资格证书会退出吗", "会计专业技术"),
])
def test_qualifications_of_other_catalogues_are_declined_before_any_clause_is_quoted(ask, question, name):
    a = ask(question)
    assert not a.answered and a.citations == []
    assert name in a.answer and "继续有效" not in a.answer


def test_a_yes_no_question_about_a_substituted_subject_gets_no_yes_or_no(ask):
    a = ask("汽车美容师也是9月30号前退出吗")
    assert not a.answered and not a.answer.startswith(("是的", "不是"))
    assert "美容师" in a.answer and "汽车美容师" in a.answer  # says the annex has the other one


def test_several_subjects_answer_the_linked_and_decline_the_others(ask):
    a = ask("焊工和电工分别是第几批？")
    assert a.answered and "第二批" in a.answer and "附件第1项" in [c.label for c in a.citations]
    assert "焊工" in a.answer and "没有「焊工」" in a.answer


def test_a_yardstick_subject_does_not_answer_for_the_one_asked(ask):
    a = ask("执业药师资格证会不会跟药物制剂工一样在第二批退出？")
    assert not a.answered and "执业药师" in a.answer and "第二批" not in a.answer


def test_the_holder_of_a_certificate_is_not_the_subject_asked_about(ask):
    """HR (an alias of 企业人力资源管理师) is who holds the certificate; the certificate is what is asked about."""
    a = ask("我们公司HR持有注册安全工程师证书，本通知涉及这个证书吗？")
    assert not a.answered and "注册安全工程师" in a.answer
    assert "第一批" not in a.answer and "企业人力资源管理师" not in a.answer
    a = ask("HR持有企业人力资源管理师证书，还有效吗？")  # the certificate held is the annex one: answered
    assert a.answered and "第一批" in a.answer and "附件第67项" in [c.label for c in a.citations]

# ---- follow-ups ---------------------------------------------------------------------------------------------

ELECTRICIAN = [{"role": "user", "content": "电工证什么时候退出目录？"},
               {"role": "assistant", "content": "电工属于第二批，拟于2020年12月31日前退出目录。"}]


def test_a_new_unknown_subject_in_a_follow_up_is_declined_not_replaced_by_the_old_one(ask):
    a = ask("那快递员呢？", ELECTRICIAN)
    assert not a.answered and "快递员" in a.answer and "第二批" not in a.answer
    a = ask("心理咨询师也是这一批吗？", ELECTRICIAN)
    assert not a.answered and "第二批" not in a.answer


def test_a_new_known_subject_in_a_follow_up_replaces_the_old_one(ask):
    a = ask("那美容师呢？", ELECTRICIAN)
    assert a.answered and "第一批" in a.answer and "附件第57项" in [c.label for c in a.citations]
    assert "电工" not in a.answer


def test_the_other_batch(ask):
    history = [{"role": "user", "content": "第一批什么时候退出？"}]
    a = ask("那剩下的另一批呢？", history)
    assert "第二批" in a.answer and "12月31日" in a.answer and "156" in a.answer


def test_an_abbreviation_is_answered_with_the_reading_said_and_without_yes_or_no(ask):
    a = ask("信通机务员是第二批吗？")
    assert a.answered and "第二批" in a.answer and "附件第71项" in [c.label for c in a.citations]
    assert "信息通信网络机务员" in a.answer.split("：")[0] and "信通机务员" in a.answer.split("：")[0]
    assert not a.answer.startswith(("是的", "不是"))


# ---- where a name ends -------------------------------------------------------------------------------------

@pytest.mark.parametrize("question, occupation, fact", [
    ("育婴员这一职业资格归哪个部门管？", "育婴员", "人力资源和社会保障部"),  # 这一: a pointer, not part of the name
    ("第58项里孤残儿童护理员是第几批？", "孤残儿童护理员", "第二批"),  # 项里: words of function only
    ("该项证书里的茶艺师什么时候退出？", "茶艺师", "2020年9月30日"),
])
def test_a_name_ends_at_pointers_and_function_words(ask, question, occupation, fact):
    a = ask(question)
    assert a.answered and occupation in a.answer and fact in a.answer, a.answer


@pytest.mark.parametrize("question", ["相关证书退出目录后还有效吗？", "原有证书以后还能用吗？"])
def test_words_of_time_and_relation_before_a_certificate_name_no_subject(ask, question):
    a = ask(question)
    assert a.answered and "第四条" in [c.label for c in a.citations], a.answer


def test_english_quantifiers_are_not_names(ask):
    a = ask("how many qualifications are in the second batch?")
    assert a.answered and "66" in a.answer and "第二条" in [c.label for c in a.citations], a.answer


@pytest.mark.parametrize("question", ["Are there any allowances for people who hold these certificates?",
                                      "What is the exam schedule for next year?"])
def test_english_questions_about_money_and_exam_dates_are_declined(ask, question):
    a = ask(question)
    assert not a.answered and not a.citations, a.answer


def test_a_body_named_after_a_department_is_not_the_department(ask):
    """…部门职业技能鉴定中心 is a body of its own: no department list, and no job guessed from its words."""
    a = ask("人社部门的职业技能鉴定中心今后要做什么？")
    assert a.answered and "第六条" in [c.label for c in a.citations], a.answer
    assert "企业人力资源管理师" not in a.answer and "涉及22项" not in a.answer


@pytest.mark.parametrize("question, fact, label", [
    ("Was this notice issued in March 2021?", "2020年7月21日", "文头"),
    ("Which ministry issued this document?", "人力资源社会保障部办公厅", "文头"),
    ("What is the deadline for the second-batch qualifications?", "2020年12月31日", "第二条"),
    # the purpose: the opening's 为…促进就业创业, or clause 一's 推动政府职能转变 (what the reform is for)
    ("印发这份文件的目的是什么？", "促进就业创业|推动政府职能转变", "开头|第一条"),
])
def test_english_header_and_batch_phrasings_and_the_purpose_of_the_notice(ask, question, fact, label):
    a = ask(question)
    labels = [c.label for c in a.citations]
    assert a.answered and any(f in a.answer for f in fact.split("|")), a.answer
    assert any(x in labels for x in label.split("|")), labels


@pytest.mark.parametrize("question, fact, label", [
    ("美容美发服务那一项有哪些职业？", "美发师", "附件第57项"),  # an item by its name without 人员
    ("这些工作最迟什么时候要办完？", "年底", "第二条"),  # 办完 is 完成
    ("以后企业能自行评价自己的技能人才吗？", "自主评价", "第五条"),
])
def test_everyday_wordings_of_items_and_topics(ask, question, fact, label):
    a = ask(question)
    assert a.answered and fact in a.answer and label in [c.label for c in a.citations], a.answer


@pytest.mark.parametrize("question", ["听说等级认定报名要交500元押金，是真的吗？",
                                      "高级茶艺指导师是不是和茶艺师一同退出？"])
def test_sums_of_money_and_a_yardstick_job_are_not_answered_for_the_one_asked(ask, question):
    a = ask(question)
    assert not a.answered and "第一批" not in a.answer, a.answer


@pytest.mark.parametrize("question", ["宇宙飞船装配工由哪个部门管？", "挖掘机证第几批退", "法律职业资格证书还有效吗？"])
def test_names_glued_to_the_next_word_or_joined_by_a_field_are_still_subjects(ask, question):
    """jieba glues a head to what follows (工由, 证第); 法律职业资格 is a qualification of its own."""
    a = ask(question)
    assert not a.answered and "第一批" not in a.answer and "第二批" not in a.answer, a.answer
    assert "第四条" not in [c.label for c in a.citations]


@pytest.mark.parametrize("question", ["技工院校的在校生以后怎么办？", "按照职业资格证书培养计划招的学生结业拿什么证？"])
def test_a_school_named_by_a_job_word_and_a_verb_before_a_certificate_are_not_subjects(ask, question):
    a = ask(question)
    assert a.answered and "第三条" in [c.label for c in a.citations], a.answer


def test_a_name_in_pieces_is_said_in_one_phrase(ask):
    """安全 … 评价 far apart in a clause question are not 安全评价师 said in pieces."""
    a = ask("跟公共安全、生命财产安全密切相关的那些水平评价类资格，通知说怎么处理？")
    assert a.answered and "安全评价师" not in a.answer and "第六条" in [c.label for c in a.citations], a.answer


@pytest.mark.parametrize("question, fact, label", [
    ("Are certificates issued earlier still usable?", "继续有效", "第四条"),
    ("这份通知是根据什么出台的？", "国务院常务会议", "开头"),
    ("为啥要取消这些职业资格？", "社会化等级认定", "第一条"),
])
def test_more_ways_of_asking_about_validity_the_basis_and_the_reason(ask, question, fact, label):
    a = ask(question)
    assert a.answered and fact in a.answer and label in [c.label for c in a.citations], a.answer


def test_this_department_in_a_follow_up_is_the_department_of_the_job_asked_before(ask):
    history = [{"role": "user", "content": "评茶员归谁管？"},
               {"role": "assistant", "content": "评茶员由中华全国供销合作总社实施。"}]
    a = ask("这个单位还负责哪些职业？", history)
    assert a.answered and "中华全国供销合作总社" in a.answer and "评茶员" in a.answer, a.answer


def test_an_exam_fee_asked_about_one_s_own_certificate_is_the_exam_clause(ask):
    a = ask("俺的证要退出目录了 可俺已经交了报名费还没考 能退钱不")
    assert a.answered and ("退回有关费用" in a.answer or "退回费用" in a.answer), a.answer
    assert "第三条" in [c.label for c in a.citations]


@pytest.mark.parametrize("question", ["等级认定的报名网站是哪个？官网在哪？", "以后鉴定费是不是要涨价？"])
def test_registration_sites_and_fee_levels_are_practical_matters(ask, question):
    a = ask(question)
    assert not a.answered and not a.citations, a.answer


def test_a_department_pointed_at_by_its_kind_or_order_is_the_earlier_jobs(ask):
    a = ask("这个局一共管几个职业", [{"role": "user", "content": "中药炮制工由谁负责"}])
    assert "国家中医药管理局" in a.answer and "3个" in a.answer and "附件第32项" in {c.label for c in a.citations}
    a = ask("第一个单位还管哪些", [{"role": "user", "content": "炼焦工谁实施"}])
    assert "中国煤炭工业协会" in a.answer and "压缩机操作工" in a.answer and "中国钢铁工业协会" not in a.answer


@pytest.mark.parametrize("follow_up", ["那一项一共有几个职业", "那项还有哪些职业"])
def test_that_item_after_a_job_is_the_job_s_item(ask, follow_up):
    history = [{"role": "user", "content": "贵金属首饰与宝玉石检测员哪批退出"},
               {"role": "assistant", "content": "贵金属首饰与宝玉石检测员属于第二批，拟于2020年12月31日前退出目录。"}]
    a = ask(follow_up, history)
    assert "附件第64项" in [c.label for c in a.citations]
    assert "4个" in a.answer and "纤维检验员" in a.answer

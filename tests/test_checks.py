"""Sentence checks of generated answers on hand-built groundings (no network, no index).

Each check has a sentence it must stop and a true sentence it must let through; the lies a real small model told
(issue 11) are replayed through the whole gate."""
from __future__ import annotations

import pytest

from assistant.checks import (
    CheckFailure, FactBook, Sentence, SentenceContext, check_batches, check_cited, check_dates,
    check_departments, check_is_an_answer, check_items, check_known_occupations, check_language, check_negation, check_not_a_repeat,
    check_not_declining, check_numbers, check_occupations, check_organisations, check_rule_supported,
    check_withdrawal, rule_overlap,
)
from assistant.config import REPO_ROOT, Config
from assistant.generate import AnswerChecker, SentenceGate, build_context, marked_reference
from assistant.profile import NoticeProfile
from assistant.records import Answer, Citation, Evidence, Grounding

ELECTRICIAN_Q = "电工证什么时候退出目录？"


@pytest.fixture(scope="module")
def facts(corpus, profile) -> FactBook:
    return FactBook.of(corpus, Config().corpus_dir / "aliases.csv", profile)


def grounding_for(corpus, occupations: list[str], clauses=(2,), answered=True, question=ELECTRICIAN_Q,
                  offline_text="离线答案。") -> Grounding:
    """The offline pipeline's output as it would be for a question about these occupations and clauses."""
    rows = [r for r in corpus.annex_rows if r.occupation in occupations]
    evidence = [Evidence(doc_id=f"annex-{r.position}", source="annex", item=r.item, position=r.position,
                         label=r.label, text=r.quote()) for r in rows]
    for n in clauses:
        for i, s in enumerate(corpus.clause(n).sentences()):
            evidence.append(Evidence(doc_id=f"clause-{n}-{i}", source="notice", clause=n,
                                     label=corpus.clause(n).label, text=s))
    citations = [Citation(source="annex", item=r.item, label=r.label, quote=r.quote()) for r in rows]
    citations += [Citation(source="notice", clause=n, label=corpus.clause(n).label, quote=corpus.clause(n).text)
                  for n in clauses]
    offline = Answer(question=question, answer=offline_text, answered=answered, citations=citations if answered else [])
    return Grounding(question=question, standalone_question=question, evidence=evidence, rows=rows, offline=offline)


def checker_for(corpus, facts, occupations=("电工",), clauses=(2,), **kw) -> AnswerChecker:
    g = grounding_for(corpus, list(occupations), clauses, **kw)
    return AnswerChecker(facts, g, {c.label: c.text for c in corpus.clauses})


def context_of(checker: AnswerChecker, sentence: Sentence) -> SentenceContext:
    g = checker.grounding
    return SentenceContext(question=g.question, support=checker.support(sentence.labels), facts=checker.facts,
                           cited=bool(sentence.labels), offline_answered=g.offline.answered,
                           grounded_names=[r.occupation for r in g.rows])


def run_check(check, checker: AnswerChecker, text: str):
    cleaned, citations, _ = checker.citations(text)
    sentence = Sentence(cleaned, tuple(c.label for c in citations))
    return check(sentence, context_of(checker, sentence))


# ---- each check: one sentence it stops, one it lets through ---------------------------------------------

CASES = [
    # (check, occupations, clauses, stopped sentence, failure, passed sentence)
    (check_language, ["电工"], (2,), "The electrician certificate leaves the list in batch two[附件第1项]。",
     CheckFailure.NOT_CHINESE, "电工属于第二批[附件第1项]。"),
    (check_not_a_repeat, ["电工"], (2,), "电工证什么时候退出目录？", CheckFailure.REPEATS_QUESTION,
     "电工拟于2020年12月31日前退出目录[附件第1项]。"),
    (check_cited, ["电工"], (2,), "电工属于第二批。", CheckFailure.UNCITED_FACT, "好的，下面说明。"),
    (check_numbers, ["电工"], (2,), "电工所在的一批共有66项职业资格[附件第1项]。", CheckFailure.UNSUPPORTED_NUMBER,
     "第二批共有66项职业资格[第二条]。"),
    (check_dates, ["电工"], (2,), "电工拟于2020年11月30日前退出目录[附件第1项]。", CheckFailure.UNSUPPORTED_DATE,
     "电工拟于2020年12月31日前退出目录[附件第1项]。"),
    (check_dates, ["电工"], (2,), "电工拟于2021年12月31日前退出目录[附件第1项]。", CheckFailure.UNSUPPORTED_DATE,
     "第一批拟于9月30日前退出[第二条]。"),
    (check_batches, ["电工"], (2,), "电工属于第45批[附件第1项]。", CheckFailure.UNSUPPORTED_BATCH,
     "电工不属于第一批，属于第二批[附件第1项]。"),
    (check_items, ["电工"], (2,), "电工列在附件第2项[附件第1项]。", CheckFailure.UNSUPPORTED_ITEM,
     "电工列在附件第1项[附件第1项]。"),
    (check_departments, ["电工"], (2,), "电工由水利部组织实施[附件第1项]。", CheckFailure.UNSUPPORTED_DEPARTMENT,
     "电工由应急管理部、人社部组织实施[附件第1项]。"),
    (check_organisations, ["电工"], (2,), "电工证由国家职业资格鉴定指导中心颁发[附件第1项]。",
     CheckFailure.UNSUPPORTED_ORGANISATION, "电工由应急管理部组织实施[附件第1项]。"),
    (check_occupations, ["电工"], (2,), "电工和美容师都属于第二批[附件第1项]。", CheckFailure.UNSUPPORTED_OCCUPATION,
     "电工和设备点检员都属于第二批[附件第1项]。"),
    (check_known_occupations, ["电工"], (2,), "附件第1项还包括电工和无人机驾驶员[附件第1项]。",
     CheckFailure.UNKNOWN_OCCUPATION, "附件第1项包括电工[附件第1项]。"),
    (check_rule_supported, ["电工"], (4,), "退出后电工证作废，需重新考试[第四条]。", CheckFailure.UNSUPPORTED_RULE,
     "退出目录前已发放的职业资格证书继续有效[第四条]。"),
    (check_rule_supported, [], (3,), "报名费不能退[第三条]。", CheckFailure.UNSUPPORTED_RULE,
     "已受理鉴定考试报名的，可以根据考生意愿退回有关费用[第三条]。"),
    (check_negation, [], (4,), "退出目录前已发放的职业资格证书不再有效[第四条]。", CheckFailure.NEGATION_FLIP,
     "退出目录前已发放的职业资格证书继续有效[第四条]。"),
    (check_withdrawal, ["消防员"], (2,), "消防员证会退出目录[附件第76项]。", CheckFailure.CONTRADICTS_ANNEX,
     "消防员拟依法调整为准入类职业资格，不会退出目录[附件第76项]。"),
    (check_is_an_answer, ["电工"], (2,), "【来源】引用时在句末写出方括号中的标签：", CheckFailure.NOT_AN_ANSWER,
     "电工属于第二批[附件第1项]。"),
    (check_not_declining, ["电工"], (2,), "通知没有涉及电工证的问题。", CheckFailure.DECLINES_ANSWERABLE,
     "电工属于第二批[附件第1项]。"),
]


@pytest.mark.parametrize("check, occupations, clauses, stopped, failure, passed", CASES,
                         ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)])
def test_each_check_stops_its_lie_and_passes_the_truth(corpus, facts, check, occupations, clauses, stopped,
                                                       failure, passed):
    checker = checker_for(corpus, facts, occupations, clauses)
    problem = run_check(check, checker, stopped)
    assert problem is not None and problem.failure is failure, problem
    assert run_check(check, checker, passed) is None


def test_a_number_counts_what_its_source_counts(corpus, facts):
    checker = checker_for(corpus, facts, [], (2,))
    assert run_check(check_numbers, checker, "第一批涉及14项职业资格、29个职业[第二条]。") is None
    problem = run_check(check_numbers, checker, "第一批涉及14个职业[第二条]。")
    assert problem is not None and problem.detail == "14个"


def test_reasons_are_enums_serialised_as_their_value():
    assert CheckFailure.UNSUPPORTED_DATE == "unsupported_date" and str(CheckFailure.UNSUPPORTED_DATE) == "unsupported_date"


def test_rule_overlap_counts_the_claim_not_the_notices_own_subject():
    clause4 = "退出目录前已发放的职业资格证书继续有效，可作为持证者职业能力水平的证明。"
    assert rule_overlap("退出目录前已发放的职业资格证书继续有效", clause4) == 1.0
    assert rule_overlap("退出后电工证作废需重新考试", clause4) < 0.5


# ---- the lies of the issue, through the whole gate ------------------------------------------------------------

LIES = [
    ("拟于2020年11月30日前退出目录[附件第1项]。", CheckFailure.UNSUPPORTED_DATE),
    ("退出后电工证作废，需重新考试[第四条]。", CheckFailure.UNSUPPORTED_RULE),
    ("The certificate for electricians will be withdrawn in the second batch[附件第1项].", CheckFailure.NOT_CHINESE),
    ("电工证由国家职业技能鉴定中心于2019年5月1日颁发[附件第1项]。", CheckFailure.UNSUPPORTED_DATE),
    ("电工证什么时候退出目录？", CheckFailure.REPEATS_QUESTION),
    ("附件第1项包括电工、无人机驾驶员和直播带货员[附件第1项]。", CheckFailure.UNKNOWN_OCCUPATION),
    ("电工属于第45批[附件第1项]。", CheckFailure.UNSUPPORTED_BATCH),
    ("报名费不能退[第三条]。", CheckFailure.UNSUPPORTED_RULE),
    ("消防员证会在第二批退出[第二条]。", CheckFailure.UNSUPPORTED_OCCUPATION),
    ("2021年还有第三批职业资格退出目录[第二条]。", CheckFailure.UNSUPPORTED_BATCH),
    ("第一批涉及14个职业[第二条]。", CheckFailure.UNSUPPORTED_NUMBER),  # recorded: 14 项, 29 个职业
    ("截止日期是2020年8月31日[第二条]。", CheckFailure.UNSUPPORTED_DATE),  # recorded
]


@pytest.mark.parametrize("lie, failure", LIES)
def test_the_lies_of_the_real_model_are_not_shown(corpus, facts, lie, failure):
    checker = checker_for(corpus, facts, ["电工"], (2, 3, 4))
    verdicts = checker.verify(lie)
    assert verdicts.shown == [], verdicts.shown
    assert [p.failure for p in verdicts.problems] == [failure], verdicts.problems


def test_a_lie_between_true_sentences_is_dropped_and_the_rest_shown(corpus, facts):
    checker = checker_for(corpus, facts, ["电工"], (2, 4))
    text = ("电工属于第二批[附件第1项]。退出后电工证作废[第四条]。"
            "退出目录前已发放的职业资格证书继续有效[第四条]。")
    v = checker.verify(text)
    assert v.text() == "电工属于第二批[附件第1项]。退出目录前已发放的职业资格证书继续有效[第四条]。"
    assert [p.failure for p in v.problems] == [CheckFailure.UNSUPPORTED_RULE]
    assert list(v.citations) == ["附件第1项", "第四条"]


def test_an_uncited_sentence_is_held_to_the_reference_answers_sources(corpus, facts):
    checker = checker_for(corpus, facts, ["电工"], (2,))
    good = checker.verify("电工属于第二批，拟于2020年12月31日前退出目录。")
    assert good.text() == "电工属于第二批，拟于2020年12月31日前退出目录[附件第1项][第二条]。"
    bad = checker.verify("电工属于第一批，拟于2020年9月30日前退出目录。")
    assert bad.shown == [] and bad.problems[0].failure is CheckFailure.CONTRADICTS_ANNEX


def test_an_invented_label_is_not_replaced_by_the_reference_sources(corpus, facts):
    v = checker_for(corpus, facts, ["电工"], (2,)).verify("电工属于第二批[附件第99项]。")
    assert v.shown == [] and v.problems[0].failure is CheckFailure.UNCITED_FACT


def test_sentences_without_facts_wait_for_a_cited_one(corpus, facts):
    v = checker_for(corpus, facts, ["电工"], (2,)).verify("好的，下面说明一下。")
    assert v.shown == [] and v.held == ["好的，下面说明一下。"]
    v = checker_for(corpus, facts, ["电工"], (2,)).verify("不是。[附件第1项]")  # a bare 是/不是 alone is no answer
    assert v.shown == [] and v.polar == "不是"


# ---- short true sentences (issue 19) ---------------------------------------------------------------------------

def test_a_short_no_that_corrects_a_false_premise_is_shown_with_its_correction(corpus, facts):
    checker = checker_for(corpus, facts, ["电工"], (2,), question="电工是第一批退出的吗？")
    v = checker.verify("不是。电工属于第二批[附件第1项]。")
    assert v.text() == "不是，电工属于第二批[附件第1项]。"


def test_a_short_yes_that_contradicts_what_follows_is_not_shown(corpus, facts):
    checker = checker_for(corpus, facts, ["电工"], (2,), question="电工是第一批退出的吗？")
    v = checker.verify("是的。电工属于第二批[附件第1项]。")
    assert v.text() == "电工属于第二批[附件第1项]。"  # the false 是 dropped, the true sentence kept


def test_a_short_yes_agreeing_with_the_offline_answer_is_shown(corpus, facts):
    checker = checker_for(corpus, facts, ["电工"], (2,), question="电工是第二批吗？",
                          offline_text="是的，电工属于第二批[1]。")
    v = checker.verify("是。电工属于第二批[附件第1项]。")
    assert v.text() == "是，电工属于第二批[附件第1项]。"


def test_still_valid_survives_when_the_clause_says_so(corpus, facts):
    checker = checker_for(corpus, facts, [], (4,), question="退出目录后我的证书还有效吗？")
    v = checker.verify("仍然有效[第四条]。")
    assert v.text() == "仍然有效[第四条]。", v.problems


def test_the_shared_text_module_reads_numerals_negation_markers_and_dates():
    from assistant import textfacts as t

    assert [t.numeral_value(w) for w in ("二", "十", "十二", "三十一", "首", "7")] == [2, 10, 12, 31, 1, 7]
    assert t.chinese_number(31) == "三十一"
    assert t.negated_before("电工不属于") and t.negated_before("并非由") and not t.negated_before("电工属于")
    assert t.MARKER.findall("退出[1][附件第4项]【第二条】") == ["1", "附件第4项", "第二条"]
    assert t.dates_in(t.normalise_deadlines("2020 年 9 月 30 日前")) == {(9, 30)}


# ---- batch words and deadlines come from the notice profile ------------------------------------------------------

BEAUTY_OLD_DATE = "美容师属于第一批，拟于2020年9月30日前退出目录[附件第57项]。"
BEAUTY_NEW_DATE = "美容师属于第一批，拟于2020年10月15日前退出目录[附件第57项]。"


def test_the_checker_takes_the_batch_deadlines_from_the_profile(corpus, facts):
    """Clause 二 moved to another batch-1 deadline: the checker then rejects the old date and accepts the new one
    (the real profile does the opposite), so the dates it checks come from the profile, not from code."""
    clause = corpus.clause(2)
    changed = clause.model_copy(update={"text": clause.text.replace("9 月 30 日", "10 月 15 日")})
    other = corpus.model_copy(update={"clauses": corpus.clauses[:2] + (changed,) + corpus.clauses[3:]})
    moved = FactBook.of(other, REPO_ROOT / "corpus" / "aliases.csv", NoticeProfile.load(other, REPO_ROOT / "corpus"))
    question = "美容师什么时候退出目录？"
    real = checker_for(corpus, facts, ["美容师"], (2,), question=question)
    assert run_check(check_dates, real, BEAUTY_OLD_DATE) is None
    assert run_check(check_dates, real, BEAUTY_NEW_DATE).failure is CheckFailure.UNSUPPORTED_DATE

    checker = checker_for(other, moved, ["美容师"], (2,), question=question)
    assert run_check(check_dates, checker, BEAUTY_OLD_DATE).failure is CheckFailure.UNSUPPORTED_DATE
    assert run_check(check_dates, checker, BEAUTY_NEW_DATE) is None
    assert checker.verify(BEAUTY_NEW_DATE).text() == BEAUTY_NEW_DATE
    assert checker.verify(BEAUTY_OLD_DATE).shown == []
    # The annex-wide check reads 10月15日 as batch 1's deadline now: said of 电工 (batch 2) it is a contradiction.
    assert checker.contradictions("电工拟于2020年10月15日前退出目录。") == ["电工 的退出期限被说成10月15日（附件：12月31日）"]
    assert real.contradictions("电工拟于2020年10月15日前退出目录。") == []


# ---- cutting the stream into sentences ---------------------------------------------------------------------------

def test_the_gate_keeps_markers_after_a_full_stop_with_their_sentence():
    gate = SentenceGate()
    out = []
    for piece in ["电工属于", "第二批。", "[附件", "第1项]", "美容师", "属于第一批[附件第57项]。"]:
        out += gate.feed(piece)
    out += gate.flush()
    assert out == ["电工属于第二批。[附件第1项]", "美容师属于第一批[附件第57项]。"]


def test_the_gate_waits_for_what_follows_a_full_stop():
    gate = SentenceGate()
    assert gate.feed("电工属于第二批。") == []
    assert gate.feed("它") == ["电工属于第二批。"]


def test_markers_after_the_full_stop_are_shown_before_it(corpus, facts):
    v = checker_for(corpus, facts, ["电工"], (2,)).verify("电工属于第二批。[附件第1项]")
    assert v.text() == "电工属于第二批[附件第1项]。"


# ---- the prompt -----------------------------------------------------------------------------------------------------

def test_reference_answer_carries_the_labels_of_its_sources(corpus, facts):
    offline = Answer(question=ELECTRICIAN_Q, answered=True,
                     answer="「电工」列在附件第1项「机械设备修理人员」，属于第二批，拟于2020年12月31日前退出目录。",
                     citations=[Citation(source="annex", item=1, label="附件第1项", quote="1 机械设备修理人员 电工"),
                                Citation(source="notice", clause=2, label="第二条",
                                         quote="其他部门（单位）组织实施的 66 项职业资格（涉及 156 个职业）拟于 12 月 31 日前第二批退出。")])
    assert marked_reference(offline, facts).endswith("退出目录[附件第1项][第二条]。")


def test_reference_answer_cites_only_what_each_sentence_rests_on(corpus, facts):
    """The offline answer's own [n] markers become labels: the department sentence cites the annex item only,
    never clause 二 (which says nothing about departments); a sentence without a marker cites nothing."""
    offline = Answer(question="森林消防员归哪个部门？", answered=True,
                     answer="森林消防员的实施部门是应急管理部、国家林业和草原局[1]。它属于第二批，拟于2020年12月31日前退出目录[1][2]。请以原文为准。",
                     citations=[Citation(source="annex", item=74, label="附件第74项", marker=1),
                                Citation(source="notice", clause=2, label="第二条", marker=2)])
    marked = marked_reference(offline, facts)
    assert marked == ("森林消防员的实施部门是应急管理部、国家林业和草原局[附件第74项]。"
                      "它属于第二批，拟于2020年12月31日前退出目录[附件第74项][第二条]。请以原文为准。")
    unmarked = offline.model_copy(update={"answer": "实施部门是应急管理部。"})
    assert "[第二条]" not in marked_reference(unmarked, facts)


def test_context_lists_labelled_sources_highest_ranked_first_within_the_budget(corpus, facts):
    g = grounding_for(corpus, ["电工"], (2, 3, 4, 6))
    full = build_context(g, facts).sources
    assert "[附件第1项] 职业资格：机械设备修理人员；职业：电工" in full
    assert "实施部门：应急管理部、人力资源和社会保障部；批次：第二批；退出期限：2020年12月31日前退出目录" in full
    assert "9月30日前第一批退出" in full  # scan spaces removed for the model
    assert full.index("[附件第1项]") < full.index("[第二条]") < full.index("[第六条]")
    small = build_context(g, facts, budget_tokens=260).sources
    assert "\n[附件第1项] " in small and "\n[第六条] " not in small and "因篇幅未列出" in small


def test_a_long_list_of_occupations_is_summarised(corpus, facts):
    names = [r.occupation for r in corpus.annex_rows if r.batch == "1"]
    g = grounding_for(corpus, names, (2,))
    context = build_context(g, facts).sources
    listed = sum(1 for n in set(names) if n in context)
    assert listed < len(set(names)) and "等" in context


def test_a_second_reader_saying_less_than_the_offline_lead_does_not_replace_it(corpus, facts):
    """Real model, blind set: asked the notice's background, the second reader (no reference answer) said
    "今年年底前拟分批退出", true but not the offline answer's 2019年12月国务院常务会议决定…: it is held back."""
    offline = ("2019年12月，国务院常务会议决定分步取消水平评价类技能人员职业资格，推行社会化职业技能等级认定；"
               "通知为贯彻落实这一精神，统筹推进疫情防控和经济社会发展，促进就业创业[1]。")
    g = grounding_for(corpus, [], (0,), question="这个通知出台的背景是什么？", offline_text=offline)
    g = g.model_copy(update={"offline": g.offline.model_copy(update={"citations": [
        c.model_copy(update={"marker": 1}) for c in g.offline.citations]})})
    checker = AnswerChecker(facts, g, {c.label: c.text for c in corpus.clauses}, reference=False)
    assert checker.verify("根据通知，今年年底前，拟分批将水平评价类技能人员职业资格退出目录[开头]。").shown == []
    full = checker.verify("2019年12月，国务院常务会议决定分步取消水平评价类技能人员职业资格，推行社会化职业技能等级认定[开头]。")
    assert full.shown, full.problems


def test_a_source_line_copied_back_is_not_an_answer(corpus, facts):
    checker = checker_for(corpus, facts, [], (2,), answered=False, question="2021年还有哪些证要取消？")
    checker.strong = True
    v = checker.verify("[第二条] 二、今年年底前，拟分批将水平评价类技能人员职业资格退出目录。")
    assert v.shown == [] and v.problems[0].failure is CheckFailure.NOT_AN_ANSWER


def test_a_generated_sentence_does_not_cite_a_source_it_does_not_rest_on(corpus, facts):
    checker = checker_for(corpus, facts, ["森林消防员"], (2,), question="森林消防员归哪个部门管？")
    v = checker.verify("森林消防员的实施部门是应急管理部、国家林业和草原局[附件第76项][第二条]。")
    assert v.text() == "森林消防员的实施部门是应急管理部、国家林业和草原局[附件第76项]。" and list(v.citations) == ["附件第76项"]
    v = checker_for(corpus, facts, ["电工"], (2,)).verify("电工属于第二批，拟于2020年12月31日前退出目录[附件第1项][第二条]。")
    assert list(v.citations) == ["附件第1项", "第二条"]  # the deadline is clause 二's

"""Generation through an OpenAI-compatible endpoint (issue 4), against a scripted fake endpoint on loopback.

What the user gets is checked for each scripted behaviour: a good cited answer, a wrong batch, invented
citations, garbage, HTTP 500, a stall past the timeout, empty output, an unreachable endpoint."""
from __future__ import annotations

import dataclasses
import json
import logging
import signal
import socket
import time

import pytest

from assistant import Assistant, Config
from assistant.generate import AnswerChecker, FactBook, LLMAnswerer, build_context, clean_rewrite
from assistant.records import Answer, Citation, Evidence, Grounding, Turn
from fake_llm import FakeLLM, Reply

API_KEY = "sk-test-DO-NOT-LEAK-7f3a9c"
TIMEOUT = 2.0  # seconds; the stall tests use SHORT
SHORT = 1.0
TEST_LIMIT = 30  # no test here may run longer than this


@pytest.fixture(autouse=True)
def time_limit():
    """Every test here is bounded in time (SIGALRM; pytest-timeout is not a dependency)."""
    def expired(signum, frame):
        raise TimeoutError(f"test ran longer than {TEST_LIMIT} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_LIMIT)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def fake():
    with FakeLLM() as server:
        yield server


@pytest.fixture(scope="module")
def llm_assistant(fake, index_dir) -> Assistant:
    """A real Assistant configured for generation through the fake endpoint."""
    return Assistant.load(Config(index_dir=index_dir, llm_enabled=True, llm_base_url=fake.base_url,
                                 llm_model="fake", llm_api_key=API_KEY, llm_timeout=TIMEOUT))


@pytest.fixture()
def llm(fake, llm_assistant):
    """The fake endpoint with an empty script and request log."""
    fake.script()
    fake.chooser = None
    return fake


def answerer(assistant: Assistant, **update) -> LLMAnswerer:
    return LLMAnswerer(assistant.config.model_copy(update=update), assistant.corpus)


def events_of(stream) -> list:
    return list(stream)


def final(events) -> Answer:
    answers = [e for e in events if e.kind == "answer"]
    assert len(answers) == 1 and events[-1].kind == "answer"
    return answers[0].answer


def streamed_text(events) -> str:
    return "".join(e.text for e in events if e.kind == "token")


GOOD = ("电工列在附件第1项「机械设备修理人员」，实施部门为应急管理部、人力资源和社会保障部[附件第1项]。"
        "它属于第二批，拟于2020年12月31日前退出目录[第二条]。")
ELECTRICIAN = "电工证什么时候退出目录？"


# ---- a good answer ------------------------------------------------------------------------------------

def test_good_answer_is_generated_cited_and_verified(llm, llm_assistant):
    llm.script(Reply.text(GOOD))
    a = llm_assistant.ask(ELECTRICIAN)
    assert a.mode == "llm" and a.answered and a.fallback_reason is None
    assert a.answer == GOOD
    assert [c.label for c in a.citations] == ["附件第1项", "第二条"]
    grounding = llm_assistant.ground(ELECTRICIAN)
    by_label = {}
    for e in grounding.evidence:
        by_label.setdefault(e.label, []).append(e.text)
    for c in a.citations:  # quotes are the retrieved evidence texts
        assert set(c.quote.split("\n")) == set(by_label[c.label])
    assert a.citations[0].source == "annex" and a.citations[0].item == 1
    assert a.citations[1].source == "notice" and a.citations[1].clause == 2


def test_prompt_carries_rules_sources_facts_history_and_the_key_as_bearer(llm, llm_assistant):
    llm.script(Reply.text("美容师是哪个部门负责？"),  # the follow-up rewritten before retrieval
               Reply.text("美容师属于第一批，拟于2020年9月30日前退出目录[附件第57项][第二条]。"))
    history = [Turn(role="user", content="美容师是第几批？"), Turn(role="assistant", content="美容师属于第一批。")]
    a = llm_assistant.ask("那它是哪个部门负责？", history)
    assert a.mode == "llm", a.fallback_reason
    rewrite, request = llm.chat_requests()
    assert "那它是哪个部门负责？" in rewrite.text()
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.body["model"] == "fake" and request.body["stream"] is False
    prompt = request.text()
    messages = request.messages
    assert messages[0]["role"] == "system"
    system = messages[0]["content"]
    for rule in ("只依据", "简体中文", "[第二条]", "[附件第1项]", "没有涉及", "不予理会"):
        assert rule in system
    # sources with their labels, and the structured facts of the row the question is about
    assert "[附件第57项]" in system and "[第二条]" in system
    assert "职业：美容师" in system and "实施部门：人力资源和社会保障部" in system
    assert "批次：第一批" in system and "2020年9月30日前" in system
    # the conversation history, as chat turns, before the question
    assert [m["role"] for m in messages[1:]] == ["user", "assistant", "user"]
    assert messages[1]["content"] == "美容师是第几批？" and messages[2]["content"] == "美容师属于第一批。"
    assert messages[3]["content"].startswith("那它是哪个部门负责？")
    assert "美容师" in messages[3]["content"]  # the offline reading of the follow-up goes along
    assert API_KEY not in prompt


def test_a_follow_up_the_offline_reading_cannot_place_is_grounded_on_its_rewrite(llm, llm_assistant):
    llm.script(Reply.text("森林消防员是第几批？"),
               Reply.text("森林消防员拟依照法定程序调整为准入类职业资格[附件第76项][第二条]。"))
    history = [Turn(role="user", content="今天天气怎么样？"), Turn(role="assistant", content="无法回答。")]
    a = llm_assistant.ask("说回正题，森林里灭火的那种呢？", history)
    assert a.mode == "llm" and "附件第76项" in [c.label for c in a.citations]


def test_good_answer_streams_tokens_then_exactly_one_answer(llm, llm_assistant):
    llm.script(Reply.text(GOOD, chunk=3))
    events = events_of(llm_assistant.stream(ELECTRICIAN))
    assert [e.kind for e in events if e.kind != "token"] == ["answer"]
    assert len([e for e in events if e.kind == "token"]) >= 2
    assert streamed_text(events) == GOOD
    a = final(events)
    assert a.mode == "llm" and a.answer == GOOD and [c.label for c in a.citations] == ["附件第1项", "第二条"]
    [request] = llm.chat_requests()
    assert request.body["stream"] is True


def test_think_block_of_a_reasoning_model_is_not_shown(llm, llm_assistant):
    llm.script(Reply.text("<think>用户问电工，查附件第1项。</think>" + GOOD, chunk=5))
    events = events_of(llm_assistant.stream(ELECTRICIAN))
    assert "<think>" not in streamed_text(events) and streamed_text(events).strip() == GOOD
    assert final(events).answer == GOOD


# ---- answers that contradict the annex ----------------------------------------------------------------

WRONG_BATCH = "电工属于第一批，拟于2020年9月30日前退出目录[附件第1项][第二条]。"


def test_wrong_batch_gives_the_offline_answer(llm, llm_assistant):
    llm.script(Reply.text(WRONG_BATCH))
    a = llm_assistant.ask(ELECTRICIAN)
    offline = llm_assistant.ground(ELECTRICIAN).offline
    assert a.mode == "offline" and a.fallback_reason.startswith("llm_contradicted_facts")
    assert "电工" in a.fallback_reason
    assert a.answer == offline.answer and a.citations == offline.citations
    assert "第二批" in a.answer and "第一批" not in a.answer


def test_wrong_batch_streamed_is_replaced_after_a_notice(llm, llm_assistant):
    llm.script(Reply.text(WRONG_BATCH))
    events = events_of(llm_assistant.stream(ELECTRICIAN))
    kinds = [e.kind for e in events]
    assert streamed_text(events) == WRONG_BATCH  # the tokens went out as they came …
    assert kinds[-2:] == ["notice", "answer"] and kinds.count("notice") == 1
    notice = events[-2].text
    assert notice and "\n" not in notice and "附件" in notice
    a = final(events)  # … and the final answer replaces them
    assert a.mode == "offline" and a.fallback_reason.startswith("llm_contradicted_facts")
    assert "第二批" in a.answer


@pytest.mark.parametrize("text, what", [
    ("电工属于第二批，拟于2020年9月30日前退出目录[附件第1项][第二条]。", "退出期限"),
    ("电工的实施部门是国家卫生健康委员会，属于第二批[附件第1项]。", "实施部门"),
    ("它属于准入类职业资格，不再退出[附件第1项]。", "准入类"),
])
def test_other_contradictions_give_the_offline_answer(llm, llm_assistant, text, what):
    llm.script(Reply.text(text))
    a = llm_assistant.ask(ELECTRICIAN)
    assert a.mode == "offline" and a.fallback_reason.startswith("llm_contradicted_facts"), a
    assert what in a.fallback_reason


# ---- citations -------------------------------------------------------------------------------------------

def test_only_invented_citations_give_the_offline_answer(llm, llm_assistant):
    llm.script(Reply.text("电工属于第二批，拟于2020年12月31日前退出目录[附件第99项]。"))
    a = llm_assistant.ask(ELECTRICIAN)
    assert a.mode == "offline" and a.fallback_reason == "llm_no_citations"
    assert "附件第99项" not in a.answer


def test_invented_citations_are_removed_and_the_rest_kept(llm, llm_assistant):
    llm.script(Reply.text("电工属于第二批[附件第1项][附件第99项]，拟于2020年12月31日前退出目录[第二条、第九条]。"))
    a = llm_assistant.ask(ELECTRICIAN)
    assert a.mode == "llm", a.fallback_reason
    assert a.answer == "电工属于第二批[附件第1项]，拟于2020年12月31日前退出目录[第二条]。"
    assert [c.label for c in a.citations] == ["附件第1项", "第二条"]


def test_uncited_answer_gives_the_offline_answer(llm, llm_assistant):
    llm.script(Reply.text("电工属于第二批，拟于2020年12月31日前退出目录。"))
    a = llm_assistant.ask(ELECTRICIAN)
    assert a.mode == "offline" and a.fallback_reason == "llm_no_citations" and a.answered


def test_outside_the_notice_an_uncited_model_answer_is_the_offline_decline(llm, llm_assistant):
    llm.script(Reply.text("今天北京晴，气温25度。"))
    a = llm_assistant.ask("今天天气怎么样？")
    assert a.mode == "offline" and not a.answered and a.fallback_reason == "llm_no_citations"
    assert "25度" not in a.answer and a.citations == []


def test_a_model_decline_is_an_unanswered_llm_answer(llm, llm_assistant):
    llm.script(Reply.text("这份通知没有涉及天气情况，无法回答。本助手只解答人社厅发〔2020〕80号通知的内容。"))
    a = llm_assistant.ask("今天天气怎么样？")
    assert a.mode == "llm" and not a.answered and a.citations == [] and a.fallback_reason is None


def test_a_model_that_declines_what_the_notice_answers_is_not_believed(llm, llm_assistant):
    llm.script(Reply.text("通知没有涉及电工，无法回答。"))
    a = llm_assistant.ask(ELECTRICIAN)
    assert a.mode == "offline" and a.answered and a.fallback_reason == "llm_declined"


# ---- failures ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("reply, reason", [
    (Reply.garbage(), "llm_malformed"),
    (Reply.http(500), "llm_http_500"),
    (Reply.http(401), "llm_http_401"),
    (Reply.empty(), "llm_empty"),
    (Reply.text("   [附件第1项]  "), "llm_empty"),
])
def test_failures_give_the_offline_answer(llm, llm_assistant, reply, reason):
    llm.script(reply)
    started = time.monotonic()
    a = llm_assistant.ask(ELECTRICIAN)
    assert time.monotonic() - started < TIMEOUT + 1
    offline = llm_assistant.ground(ELECTRICIAN).offline
    assert a.mode == "offline" and a.fallback_reason == reason
    assert a.answer == offline.answer and a.citations == offline.citations and a.answered


@pytest.mark.parametrize("reply, reason", [
    (Reply.garbage(), "llm_malformed"),
    (Reply.http(500), "llm_http_500"),
    (Reply.empty(), "llm_empty"),
])
def test_failures_streamed_give_a_notice_and_the_offline_answer(llm, llm_assistant, reply, reason):
    llm.script(reply)
    events = events_of(llm_assistant.stream(ELECTRICIAN))
    kinds = [e.kind for e in events]
    assert kinds[0] == "notice" and kinds.count("notice") == 1 and kinds[-1] == "answer"
    a = final(events)
    assert a.mode == "offline" and a.fallback_reason == reason
    assert streamed_text(events) == a.answer  # nothing came from the model: the offline text is streamed
    if reason == "llm_http_500":
        assert "500" in events[0].text


def test_stall_past_the_timeout_gives_the_offline_answer_in_time(llm, llm_assistant):
    llm.script(Reply.stall(SHORT + 5))
    started = time.monotonic()
    a = answerer(llm_assistant, llm_timeout=SHORT).run(llm_assistant.ground(ELECTRICIAN))
    elapsed = time.monotonic() - started
    assert a.mode == "offline" and a.fallback_reason == "llm_timeout"
    assert elapsed < SHORT + 0.75


def test_stream_stalling_after_some_tokens_gives_a_notice_and_the_offline_answer(llm, llm_assistant):
    llm.script(Reply.stall(SHORT + 5, content="电工属于第二"))
    started = time.monotonic()
    events = events_of(answerer(llm_assistant, llm_timeout=SHORT).stream(llm_assistant.ground(ELECTRICIAN)))
    elapsed = time.monotonic() - started
    assert elapsed < SHORT + 0.75
    assert streamed_text(events) == "电工属于第二"
    assert [e.kind for e in events][-2:] == ["notice", "answer"]
    a = final(events)
    assert a.mode == "offline" and a.fallback_reason == "llm_timeout" and "超时" in events[-2].text


def test_unreachable_endpoint_gives_the_offline_answer(llm_assistant):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gen = answerer(llm_assistant, llm_base_url=f"http://127.0.0.1:{port}/v1", llm_timeout=SHORT)
    grounding = llm_assistant.ground(ELECTRICIAN)
    started = time.monotonic()
    a = gen.run(grounding)
    assert a.mode == "offline" and a.fallback_reason == "llm_unreachable"
    events = events_of(gen.stream(grounding))
    assert [e.kind for e in events][0] == "notice" and final(events).fallback_reason == "llm_unreachable"
    assert time.monotonic() - started < 2 * SHORT + 1


def test_missing_endpoint_settings_give_the_offline_answer_without_a_call(llm, llm_assistant):
    gen = answerer(llm_assistant, llm_base_url=None)
    a = gen.run(llm_assistant.ground(ELECTRICIAN))
    assert a.mode == "offline" and a.fallback_reason == "llm_not_configured"
    assert llm.requests == []


def test_use_llm_false_never_calls_the_endpoint(llm, llm_assistant):
    a = llm_assistant.ask(ELECTRICIAN, use_llm=False)
    assert a.mode == "offline" and a.fallback_reason is None and llm.requests == []


# ---- the key stays secret -------------------------------------------------------------------------------

def test_api_key_never_appears_in_logs_answers_or_reprs(llm, llm_assistant, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, including openai's and httpx's
    replies = [Reply.text(GOOD), Reply.text(WRONG_BATCH), Reply.http(401), Reply.garbage(), Reply.empty()]
    outputs = []
    for reply in replies:
        llm.script(reply)
        outputs.append(llm_assistant.ask(ELECTRICIAN).to_dict())
        llm.script(reply)
        outputs += [e.model_dump(mode="json") for e in llm_assistant.stream(ELECTRICIAN)]
    assert all(r.headers["authorization"] == f"Bearer {API_KEY}" for r in llm.chat_requests())
    assert API_KEY not in caplog.text
    assert API_KEY not in json.dumps(outputs, ensure_ascii=False)
    assert API_KEY not in repr(answerer(llm_assistant)) and API_KEY not in repr(llm_assistant.config)
    assert API_KEY not in json.dumps(llm_assistant.health(), ensure_ascii=False)


def test_without_a_key_a_placeholder_is_sent(llm, llm_assistant):
    llm.script(Reply.text(GOOD))
    a = answerer(llm_assistant, llm_api_key=None).run(llm_assistant.ground(ELECTRICIAN))
    assert a.mode == "llm"
    assert llm.chat_requests()[0].headers["authorization"] == "Bearer not-needed"


# ---- follow-up rewriting ------------------------------------------------------------------------------

HISTORY = [Turn(role="user", content="美容师是第几批？"), Turn(role="assistant", content="美容师属于第一批[附件第57项]。")]


def test_rewrite_turns_a_follow_up_into_a_standalone_question(llm, llm_assistant):
    llm.script(Reply.text("改写后的问题：美容师由哪个部门负责实施？\n（补全了指代）"))
    out = answerer(llm_assistant).rewrite("那它归哪个部门管？", HISTORY)
    assert out == "美容师由哪个部门负责实施？"
    [request] = llm.chat_requests()
    assert "美容师是第几批？" in request.text() and "那它归哪个部门管？" in request.text()
    assert "改写" in request.messages[0]["content"]


def test_rewrite_without_history_makes_no_call(llm, llm_assistant):
    assert answerer(llm_assistant).rewrite("电工什么时候退出？", []) == "电工什么时候退出？"
    assert llm.requests == []


@pytest.mark.parametrize("reply", [Reply.http(500), Reply.garbage(), Reply.empty(), Reply.stall(SHORT + 5)])
def test_rewrite_failures_return_the_question_unchanged(llm, llm_assistant, reply):
    llm.script(reply)
    started = time.monotonic()
    out = answerer(llm_assistant, llm_timeout=SHORT).rewrite("那它呢？", HISTORY)
    assert out == "那它呢？" and time.monotonic() - started < SHORT + 0.75


def test_clean_rewrite_rejects_what_is_not_a_question():
    assert clean_rewrite("那它呢？", "「美容师的实施部门是哪个？」") == "美容师的实施部门是哪个？"
    assert clean_rewrite("那它呢？", "<think>想一想</think>\n美容师呢？") == "美容师呢？"
    assert clean_rewrite("那它呢？", "x" * 200) == "那它呢？"
    assert clean_rewrite("那它呢？", "美容师属于第一批[附件第57项]") == "那它呢？"


# ---- the checks on hand-built groundings (no network) -----------------------------------------------------

@pytest.fixture(scope="module")
def checker(corpus) -> AnswerChecker:
    return AnswerChecker(FactBook.of(corpus, Config().corpus_dir / "aliases.csv"))


def grounding_for(corpus, occupations: list[str], clauses=(2,), answered=True) -> Grounding:
    rows = [r for r in corpus.annex_rows if r.occupation in occupations]
    evidence = [Evidence(doc_id=f"annex-{r.position}", source="annex", item=r.item, position=r.position,
                         label=r.label, text=r.quote()) for r in rows]
    for n in clauses:
        for i, s in enumerate(corpus.clause(n).sentences()):
            evidence.append(Evidence(doc_id=f"clause-{n}-{i}", source="notice", clause=n,
                                     label=corpus.clause(n).label, text=s))
    offline = Answer(question="q", answer="离线答案。", answered=answered,
                     citations=[Citation(source="annex", item=r.item, label=r.label, quote=r.quote()) for r in rows])
    return Grounding(question="q", standalone_question="q", evidence=evidence, rows=rows, offline=offline)


@pytest.mark.parametrize("text", [
    "电工属于第二批，不属于第一批[附件第1项]。",
    "电工和美容师分别属于第二批和第一批[附件第1项][附件第57项]。",
    "第一批包括美容师等，第二批包括电工[附件第1项][附件第57项]。",
    "电工属于第二批[附件第1项]。通知第二条规定，人力资源社会保障部门和有关部门组织实施的14项职业资格拟于9月30日前第一批退出[第二条]。",
    "人力资源和社会保障部负责的有：美容师；应急管理部、人力资源和社会保障部负责的有：电工[附件第1项][附件第57项]。",
    "电工（附件第1项）属于第二批，拟于2020年12 月 31 日前退出目录（第二条）。",
])
def test_statements_that_agree_with_the_annex_pass(corpus, checker, text):
    checked = checker.check(grounding_for(corpus, ["电工", "美容师"]), text)
    assert checked.answer is not None, checked.reason
    assert checked.answer.mode == "llm" and checked.answer.answered


@pytest.mark.parametrize("text, occupations", [
    ("美容师属于第二批[附件第57项]。", ["美容师"]),
    ("美容师拟于12月31日前退出[附件第57项]。", ["美容师"]),
    ("电工和美容师都属于第二批[附件第1项][附件第57项]。", ["电工", "美容师"]),
    ("它属于第一批[附件第1项]。", ["电工"]),  # one row: any batch word that contradicts it
    ("美容师由国家卫生健康委员会组织实施[附件第57项]。", ["美容师"]),
    ("美容师由卫健委组织实施[附件第57项]。", ["美容师"]),
    ("附件中实施部门包含水利部的职业有：美容师[附件第57项]。", ["美容师"]),
])
def test_statements_that_contradict_the_annex_are_caught(corpus, checker, text, occupations):
    checked = checker.check(grounding_for(corpus, occupations), text)
    assert checked.answer is None and checked.reason.startswith("llm_contradicted_facts"), checked


def test_numbered_and_parenthesised_citations_map_to_labels(corpus, checker):
    g = grounding_for(corpus, ["电工"])
    checked = checker.check(g, "电工属于第二批[来源1]，拟于2020年12月31日前退出（第二条）。")
    assert checked.answer is not None, checked.reason
    assert [c.label for c in checked.answer.citations] == ["附件第1项", "第二条"]
    assert "[附件第1项]" in checked.answer.answer and "[第二条]" in checked.answer.answer


def test_context_lists_labelled_sources_and_row_facts(corpus):
    context = build_context(grounding_for(corpus, ["电工"]))
    assert "来源1 [附件第1项]" in context
    assert "职业：电工；职业资格：机械设备修理人员；实施部门：应急管理部、人力资源和社会保障部；批次：第二批；退出期限：2020年12月31日前退出目录" in context
    assert "9月30日前第一批退出" in context  # scan spaces removed for the model


def test_assistant_stream_with_use_llm_reaches_the_endpoint(llm, index_dir, llm_assistant):
    """use_llm=True on an Assistant whose config leaves generation off still goes through the endpoint."""
    off = dataclasses.replace(llm_assistant, config=llm_assistant.config.model_copy(update={"llm_enabled": False}))
    llm.script(Reply.text(GOOD))
    events = events_of(off.stream(ELECTRICIAN, use_llm=True))
    assert final(events).mode == "llm" and len(llm.chat_requests()) == 1

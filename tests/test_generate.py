"""Generation through an OpenAI-compatible endpoint (issues 4 and 11), against a scripted fake endpoint on loopback.

What the user gets is checked for each scripted behaviour: a good cited answer, the lies a real small model told,
invented citations, garbage, HTTP 500, a stall past the timeout (and the upstream request closed), empty output,
an unreachable endpoint, the real model's recorded outputs. No token event may carry a sentence that failed a
check."""
from __future__ import annotations

import dataclasses
import json
import logging
import signal
import socket
import time
from pathlib import Path

import re

import pytest

from assistant import Assistant, Config
from assistant.checks import FallbackReason
from assistant.generate import LLMAnswerer, agreed_evidence, clean_rewrite, guard_rewrite
from assistant.records import Answer, Grounding, Turn
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
    """A real Assistant configured for generation through the fake endpoint. Every offline reading counts as
    confident (llm_confident_at=0) and confident answers are sent to be rephrased, so these tests of the checks see
    one path whatever the frame model's confidence (which is not loaded: the pattern reading answers); the choice of
    path has its own tests (below), on readings set by hand."""
    return Assistant.load(Config(index_dir=index_dir, llm_enabled=True, llm_base_url=fake.base_url,
                                 llm_model="fake", llm_api_key=API_KEY, llm_timeout=TIMEOUT,
                                 llm_confident_at=0.0, llm_rephrase_confident=True, frame_model=False))


@pytest.fixture()
def llm(fake, llm_assistant):
    """The fake endpoint with an empty script and request log."""
    fake.script()
    fake.chooser = None
    return fake


def answerer(assistant: Assistant, **update) -> LLMAnswerer:
    return LLMAnswerer(assistant.config.model_copy(update=update), assistant.corpus, assistant.profile)


def events_of(stream) -> list:
    return list(stream)


def final(events) -> Answer:
    answers = [e for e in events if e.kind == "answer"]
    assert len(answers) == 1 and events[-1].kind == "answer"
    return answers[0].answer


def after_status(events) -> list:
    """A stream of the rephrase or evidence path opens at once with one status line (what the user waits for);
    the events after it."""
    assert events[0].kind == "status" and events[0].state == "reading" and events[0].text, events[0]
    assert [e.kind for e in events].count("status") == 1
    return events[1:]


def streamed_text(events) -> str:
    return "".join(e.text for e in events if e.kind == "token")


def shown(text: str) -> str:
    """A text with [label] markers as the user sees it: [n], n in order of first use (the offline scheme)."""
    order: dict[str, int] = {}

    def number(m):
        return f"[{order.setdefault(m.group(1), len(order) + 1)}]"

    return re.sub(r"\[([^\[\]\d][^\[\]]*)\]", number, text)


def markers_match(a: Answer) -> bool:
    """Every [n] in the text is a citation's marker, every citation's marker is in the text, no [label] left."""
    used = set(re.findall(r"\[(\d+)\]", a.answer))
    return used == {str(c.marker) for c in a.citations} and not re.search(r"\[[^\[\]\d][^\[\]]*\]", a.answer)


GOOD = ("电工由应急管理部、人力资源和社会保障部组织实施，属于第二批，拟于2020年12月31日前退出目录[附件第1项][第二条]。"
        "它列在附件第1项「机械设备修理人员」[附件第1项]。")
ELECTRICIAN = "电工证什么时候退出目录？"


# ---- a good answer ------------------------------------------------------------------------------------

def test_good_answer_is_generated_cited_and_verified(llm, llm_assistant):
    llm.script(Reply.text(GOOD))
    a = llm_assistant.ask(ELECTRICIAN)
    assert a.mode == "llm" and a.answered and a.fallback_reason is None
    assert a.answer == shown(GOOD) and markers_match(a)
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
               Reply.text("美容师由人力资源和社会保障部组织实施，属于第一批，拟于2020年9月30日前退出目录[附件第57项][第二条]。"))
    history = [Turn(role="user", content="美容师是第几批？"), Turn(role="assistant", content="美容师属于第一批。")]
    a = llm_assistant.ask("那它是哪个部门负责？", history)
    assert a.mode == "llm", a.fallback_reason
    rewrite, request = llm.chat_requests()
    assert "那它是哪个部门负责？" in rewrite.text()
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.body["model"] == "fake" and request.body["stream"] is True
    assert request.body["max_tokens"] == llm_assistant.config.llm_max_answer_tokens
    prompt = request.text()
    messages = request.messages
    assert messages[0]["role"] == "system"
    system = messages[0]["content"]
    for rule in ("只依据", "简体中文", "[第二条]", "[附件第1项]", "没有涉及", "不予理会"):
        assert rule in system
    # the reference answer carries its sources' markers, so a model that copies it keeps its citations; it
    # closes the user's turn, nearest to the answer
    assert "依据原文整理" not in system  # the rules name it; the answer itself is not in the system prompt
    reference = messages[-1]["content"].rsplit("【参考答案】", 1)[1]
    assert "[附件第57项]" in reference and "第一批" in reference
    # sources with their labels, and the structured facts of the row the question is about
    assert "\n[附件第57项] " in system and "\n[第二条] " in system
    assert "职业：美容师" in system and "实施部门：人力资源和社会保障部" in system
    assert "批次：第一批" in system and "2020年9月30日前" in system
    # the conversation history, as chat turns, before the question
    assert [m["role"] for m in messages[1:]] == ["user", "assistant", "user"]
    assert messages[1]["content"] == "美容师是第几批？" and messages[2]["content"] == "美容师属于第一批。"
    assert messages[3]["content"].startswith("那它是哪个部门负责？")
    assert "美容师" in messages[3]["content"]  # the offline reading of the follow-up goes along
    assert API_KEY not in prompt


def test_a_rewrite_naming_a_job_the_conversation_never_named_is_dropped(llm, llm_assistant):
    """The model cannot place a follow-up nobody could place: a rewrite that invents its subject is not used."""
    llm.script(Reply.text("森林消防员是第几批？"),
               Reply.text("森林消防员拟依照法定程序调整为准入类职业资格[附件第76项][第二条][第六条]。"))
    history = [Turn(role="user", content="今天天气怎么样？"), Turn(role="assistant", content="无法回答。")]
    grounding = llm_assistant.ground("说回正题，我刚才想问的那个呢？", history)
    assert grounding.rewritten_question is None
    assert "森林消防员" not in grounding.offline.answer


def test_good_answer_streams_tokens_then_exactly_one_answer(llm, llm_assistant):
    llm.script(Reply.text(GOOD, chunk=3))
    events = events_of(llm_assistant.stream(ELECTRICIAN))
    assert [e.kind for e in events if e.kind != "token"] == ["status", "answer"] and events[0].kind == "status"
    assert len([e for e in events if e.kind == "token"]) >= 2 and {e.part for e in events if e.kind == "token"} == {"answer"}
    assert streamed_text(events) == shown(GOOD)
    a = final(events)
    assert a.mode == "llm" and a.answer == shown(GOOD) and [c.label for c in a.citations] == ["附件第1项", "第二条"]
    [request] = llm.chat_requests()
    assert request.body["stream"] is True


def test_a_true_but_incomplete_answer_is_not_shown(llm, llm_assistant):
    """The reference answer gives batch, deadline and departments; a generated answer that leaves one out is
    held back and the offline answer given instead (accuracy never drops below the offline answerer's)."""
    llm.script(Reply.text("电工列在附件第1项「机械设备修理人员」[附件第1项]。"))
    events = events_of(llm_assistant.stream(ELECTRICIAN))
    a = final(events)
    assert a.mode == "offline" and a.fallback_reason == "llm_incomplete" and "第二批" in a.answer
    assert after_status(events)[0].kind == "notice" and streamed_text(events) == a.answer


def test_a_list_copied_only_in_part_is_not_shown(llm, llm_assistant):
    """Recorded from the real model: the lead of an item's list copied, its occupations left out. True, but not the
    answer; held back, and the full list given offline."""
    partial = ("附件第8项「电力、热力生产和供应人员」包括6个职业（第一批1个，拟于2020年9月30日前退出；第二批5个，"
               "拟于2020年12月31日前退出）[附件第8项][第二条]。锅炉操作工属于第一批[附件第8项]。")
    llm.script(Reply.text(partial))
    events = events_of(llm_assistant.stream("附件第8项是什么？"))
    a = final(events)
    assert a.mode == "offline" and a.fallback_reason == "llm_incomplete"
    assert after_status(events)[0].kind == "notice" and streamed_text(events) == a.answer  # nothing generated shown
    for name in ("锅炉运行值班员", "发电集控值班员", "变配电运行值班员", "继电保护员", "燃气轮机值班员", "锅炉操作工"):
        assert name in a.answer


def test_a_count_other_than_the_reference_answers_is_not_shown(llm, llm_assistant):
    """Recorded from the real model: "80项" for the annex's 76 items (80 = 14 + 66 appears in the reference answer,
    so every number in it is supported); the count asked for must be the reference answer's."""
    llm.script(Reply.text("80项。"))
    a = llm_assistant.ask("附件一共列出多少项职业资格？")
    assert a.mode == "offline" and a.fallback_reason == "llm_incomplete" and "76项" in a.answer
    llm.script(Reply.text("附件列出水平评价类76项职业资格[文头]。"))
    a = llm_assistant.ask("附件一共列出多少项职业资格？")
    assert a.mode == "llm" and "76项" in a.answer, a.fallback_reason


def test_the_same_sources_cited_twice_over_are_cited_once(llm, llm_assistant):
    llm.script(Reply.text("美容师属于第一批，拟于2020年9月30日前退出目录[1][2][附件第57项][第二条]。"))
    a = llm_assistant.ask("美容师是第几批？")
    assert a.mode == "llm" and "[附件第57项][第二条][附件第57项]" not in a.answer
    assert a.answer.count("[") == 2, a.answer


def test_think_block_of_a_reasoning_model_is_not_shown(llm, llm_assistant):
    llm.script(Reply.text("<think>用户问电工，查附件第1项。</think>" + GOOD, chunk=5))
    events = events_of(llm_assistant.stream(ELECTRICIAN))
    assert "<think>" not in streamed_text(events) and streamed_text(events).strip() == shown(GOOD)
    assert final(events).answer == shown(GOOD)


# ---- answers that contradict the annex ----------------------------------------------------------------

WRONG_BATCH = "电工属于第一批，拟于2020年9月30日前退出目录[附件第1项][第二条]。"


def test_wrong_batch_gives_the_offline_answer(llm, llm_assistant, caplog):
    caplog.set_level(logging.INFO, logger="assistant.generate")
    llm.script(Reply.text(WRONG_BATCH))
    a = llm_assistant.ask(ELECTRICIAN)
    offline = llm_assistant.ground(ELECTRICIAN).offline
    assert a.mode == "offline" and a.fallback_reason == FallbackReason.REJECTED.value == "llm_rejected"
    assert "dropped a generated sentence: unsupported_date: 2020年9月30日" in caplog.text
    assert a.answer == offline.answer and a.citations == offline.citations
    assert "第二批" in a.answer and "第一批" not in a.answer


def test_wrong_batch_streamed_is_never_shown(llm, llm_assistant):
    llm.script(Reply.text(WRONG_BATCH, chunk=2))
    events = after_status(events_of(llm_assistant.stream(ELECTRICIAN)))
    kinds = [e.kind for e in events]
    assert kinds[0] == "notice" and kinds.count("notice") == 1 and kinds[-1] == "answer"
    assert "核对" in events[0].text and "\n" not in events[0].text
    assert "第一批" not in streamed_text(events)  # not one token of the rejected sentence
    a = final(events)
    assert a.mode == "offline" and a.fallback_reason == "llm_rejected"
    assert streamed_text(events) == a.answer and "第二批" in a.answer


@pytest.mark.parametrize("text, failure", [
    ("电工属于第二批，拟于2020年9月30日前退出目录[附件第1项][第二条]。", "unsupported_date"),
    ("电工的实施部门是国家卫生健康委员会，属于第二批[附件第1项]。", "unsupported_department"),
    ("它属于准入类职业资格，不再退出[附件第1项]。", "unsupported_batch"),
    ("拟于2020年11月30日前退出目录[附件第1项]。", "unsupported_date"),
    ("退出后电工证作废，需重新考试[第四条]。", "unsupported_rule"),
    ("Electricians leave the catalogue in the second batch[附件第1项].", "not_chinese"),
    ("电工证什么时候退出目录？", "repeats_question"),
    ("附件第1项包括电工、无人机驾驶员和直播带货员[附件第1项]。", "unknown_occupation"),
    ("电工属于第45批[附件第1项]。", "unsupported_batch"),
])
def test_lies_of_a_real_small_model_give_the_offline_answer(llm, llm_assistant, caplog, text, failure):
    caplog.set_level(logging.INFO, logger="assistant.generate")
    llm.script(Reply.text(text, chunk=3))
    events = events_of(llm_assistant.stream(ELECTRICIAN))
    a = final(events)
    assert a.mode == "offline" and a.fallback_reason == "llm_rejected", a
    assert f"dropped a generated sentence: {failure}" in caplog.text
    assert text.split("[")[0] not in streamed_text(events)


def test_a_lie_between_checked_sentences_is_dropped_and_never_streamed(llm, llm_assistant):
    lie = "退出后电工证作废，需重新考试[第四条]。"
    llm.script(Reply.text(GOOD[:GOOD.index("。") + 1] + lie + GOOD[GOOD.index("。") + 1:], chunk=3))
    events = events_of(llm_assistant.stream(ELECTRICIAN))
    tokens = [e.text for e in events if e.kind == "token"]
    assert all("作废" not in t and "重新考试" not in t for t in tokens)
    assert len(tokens) == 2 and "".join(tokens) == shown(GOOD)  # each token a whole checked sentence
    a = final(events)
    assert a.mode == "llm" and a.answer == shown(GOOD) and [e.kind for e in events].count("notice") == 0


# ---- citations -------------------------------------------------------------------------------------------

def test_only_invented_citations_give_the_offline_answer(llm, llm_assistant):
    llm.script(Reply.text("电工属于第二批，拟于2020年12月31日前退出目录[附件第99项]。"))
    a = llm_assistant.ask(ELECTRICIAN)
    assert a.mode == "offline" and a.fallback_reason == "llm_no_citations"
    assert "附件第99项" not in a.answer


def test_invented_citations_are_removed_and_the_rest_kept(llm, llm_assistant):
    llm.script(Reply.text("电工由应急管理部、人社部组织实施，属于第二批[附件第1项][附件第99项]，"
                          "拟于2020年12月31日前退出目录[第二条、第九条]。"))
    a = llm_assistant.ask(ELECTRICIAN)
    assert a.mode == "llm", a.fallback_reason
    assert a.answer == "电工由应急管理部、人社部组织实施，属于第二批[1]，拟于2020年12月31日前退出目录[2]。"
    assert [c.label for c in a.citations] == ["附件第1项", "第二条"]


def test_an_uncited_sentence_is_held_to_the_reference_answers_sources(llm, llm_assistant):
    llm.script(Reply.text("电工由应急管理部、人社部组织实施，属于第二批，拟于2020年12月31日前退出目录。"))
    a = llm_assistant.ask(ELECTRICIAN)
    assert a.mode == "llm" and a.answered, a.fallback_reason
    assert a.answer == "电工由应急管理部、人社部组织实施，属于第二批，拟于2020年12月31日前退出目录[1][2]。"
    llm.script(Reply.text("电工属于第一批，拟于2020年9月30日前退出目录。"))
    a = llm_assistant.ask(ELECTRICIAN)
    assert a.mode == "offline" and a.fallback_reason == "llm_rejected"


def test_outside_the_notice_the_model_is_not_asked(llm, llm_assistant):
    llm.script(Reply.text("今天北京晴，气温25度。"))
    events = events_of(llm_assistant.stream("今天天气怎么样？"))
    a = final(events)
    assert a.mode == "offline" and not a.answered and a.fallback_reason == "llm_outside_notice"
    assert "25度" not in streamed_text(events) and a.citations == [] and llm.requests == []


def test_a_list_longer_than_the_answer_budget_is_not_sent_to_the_model(llm, llm_assistant):
    """A model cannot write more than max_tokens: the 66 items of the second batch, copied, would be cut short."""
    llm.script(Reply.text("第二批共66项[第二条]。"))
    a = llm_assistant.ask("第二批退出的有哪些职业资格？全部列出来")
    assert a.mode == "offline" and a.answered and a.fallback_reason == "llm_long_answer"
    assert llm.requests == [] and "第66项" in a.answer and "第1项" in a.answer


PARAPHRASE = "鉴定中心能转型吗？"


def declined_offline(assistant: Assistant, question: str) -> Grounding:
    """The grounding of `question` as if the offline answerer had no rule for it and were unsure of its reading
    (it declines), retrieval as is, with the rank agreement of the two retrievers computed as ground() does."""
    grounding = assistant.ground(question)
    decline = assistant.ground("今天天气怎么样？").offline.model_copy(update={"question": question})
    assert not decline.answered
    return grounding.model_copy(update={
        "offline": decline, "frame_applied": False, "confidence": 0.3,
        "agreed_evidence": agreed_evidence(assistant.retriever, grounding.standalone_question)})


def reader(assistant: Assistant, **update) -> LLMAnswerer:
    """The answerer with the product's path settings: confident answers are not sent."""
    return answerer(assistant, **{"llm_confident_at": 0.8, "llm_rephrase_confident": False, **update})


def test_a_paraphrase_of_a_clause_the_offline_answerer_declines_may_be_answered_by_the_model(llm, llm_assistant):
    grounding = declined_offline(llm_assistant, PARAPHRASE)  # retrieval found clause 六, which says it
    llm.script(Reply.text("有关单位职业技能鉴定中心可结合实际探索向社会培训评价组织转型[第六条]。"))
    a = reader(llm_assistant).run(grounding)
    assert a.mode == "llm" and a.answered and [c.label for c in a.citations] == ["第六条"], a
    assert a.path == "evidence" and "declined_strong_evidence" in a.path_reason
    assert "系统没有找到直接回答这个问题的规定" in llm.chat_requests()[0].text()


def test_a_model_decline_of_a_paraphrase_is_an_unanswered_llm_answer(llm, llm_assistant):
    llm.script(Reply.text("这份通知没有涉及这个问题，无法回答。"))
    a = reader(llm_assistant).run(declined_offline(llm_assistant, PARAPHRASE))
    assert a.mode == "llm" and not a.answered and a.citations == [] and a.fallback_reason is None


def test_a_paraphrase_answer_is_checked_like_any_other(llm, llm_assistant):
    llm.script(Reply.text("鉴定中心要在2021年6月30日前全部转型为社会培训评价组织[第六条]。"))
    a = reader(llm_assistant).run(declined_offline(llm_assistant, PARAPHRASE))
    assert a.mode == "offline" and not a.answered and a.fallback_reason == "llm_rejected"


def test_a_model_that_declines_what_the_notice_answers_is_not_believed(llm, llm_assistant):
    llm.script(Reply.text("通知没有涉及电工，无法回答。"))
    a = llm_assistant.ask(ELECTRICIAN)
    assert a.mode == "offline" and a.answered and a.fallback_reason == "llm_declined"


# ---- failures ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("reply, reason", [
    (Reply.garbage(), "llm_malformed"),
    (Reply.http(500), "llm_http"),
    (Reply.http(401), "llm_http"),
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
    (Reply.http(500), "llm_http"),
    (Reply.empty(), "llm_empty"),
])
def test_failures_streamed_give_a_notice_and_the_offline_answer(llm, llm_assistant, reply, reason):
    llm.script(reply)
    events = after_status(events_of(llm_assistant.stream(ELECTRICIAN)))
    kinds = [e.kind for e in events]
    assert kinds[0] == "notice" and kinds.count("notice") == 1 and kinds[-1] == "answer"
    a = final(events)
    assert a.mode == "offline" and a.fallback_reason == reason
    assert streamed_text(events) == a.answer  # nothing came from the model: the offline text is streamed


def test_stall_past_the_timeout_gives_the_offline_answer_in_time(llm, llm_assistant):
    llm.script(Reply.stall(SHORT + 5))
    started = time.monotonic()
    a = answerer(llm_assistant, llm_timeout=SHORT).run(llm_assistant.ground(ELECTRICIAN))
    elapsed = time.monotonic() - started
    assert a.mode == "offline" and a.fallback_reason == "llm_timeout"
    assert elapsed < SHORT + 0.75
    assert llm.wait_for_abandoned(1), "the timed-out request was not closed: the server would keep generating"


def test_stream_stalling_mid_sentence_shows_nothing_of_it_and_closes_the_request(llm, llm_assistant):
    llm.script(Reply.stall(SHORT + 5, content="电工属于第一"))
    events = after_status(events_of(answerer(llm_assistant, llm_timeout=SHORT).stream(llm_assistant.ground(ELECTRICIAN))))
    assert "电工属于第一" not in streamed_text(events)  # an unfinished sentence is never shown
    assert [e.kind for e in events][0] == "notice" and "超时" in events[0].text
    a = final(events)
    assert a.mode == "offline" and a.fallback_reason == "llm_timeout" and streamed_text(events) == a.answer
    assert llm.wait_for_abandoned(1)


def test_a_stall_after_checked_sentences_keeps_what_was_shown(llm, llm_assistant):
    first = GOOD[:GOOD.index("。") + 1]
    llm.script(Reply.stall(SHORT + 5, content=first + "它属于"))
    events = events_of(answerer(llm_assistant, llm_timeout=SHORT).stream(llm_assistant.ground(ELECTRICIAN)))
    first = shown(first)
    assert streamed_text(events) == first and "notice" not in [e.kind for e in events]
    a = final(events)
    assert a.mode == "llm" and a.answer == first  # what the user saw is the answer: never replaced


def test_a_client_that_leaves_early_closes_the_upstream_request(llm, llm_assistant):
    llm.script(Reply.text(GOOD * 8, chunk=3, delay=0.05))
    stream = llm_assistant.stream(ELECTRICIAN)
    first = next(e for e in stream if e.kind == "token")
    assert first.text == shown(GOOD[:GOOD.index("。") + 1])
    stream.close()  # the user went away (an SSE client disconnecting does this)
    assert llm.wait_for_abandoned(1)


def test_unreachable_endpoint_gives_the_offline_answer(llm_assistant):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gen = answerer(llm_assistant, llm_base_url=f"http://127.0.0.1:{port}/v1", llm_timeout=SHORT)
    grounding = llm_assistant.ground(ELECTRICIAN)
    started = time.monotonic()
    a = gen.run(grounding)
    assert a.mode == "offline" and a.fallback_reason == "llm_unreachable"
    events = after_status(events_of(gen.stream(grounding)))
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


def test_assistant_stream_with_use_llm_reaches_the_endpoint(llm, index_dir, llm_assistant):
    """use_llm=True on an Assistant whose config leaves generation off still goes through the endpoint."""
    off = dataclasses.replace(llm_assistant, config=llm_assistant.config.model_copy(update={"llm_enabled": False}))
    llm.script(Reply.text(GOOD))
    events = events_of(off.stream(ELECTRICIAN, use_llm=True))
    assert final(events).mode == "llm" and len(llm.chat_requests()) == 1


# ---- the HTTP stream and the CLI ---------------------------------------------------------------------------------

def sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            field, _, value = line.partition(":")
            if field == "event":
                name = value.strip()
            elif field == "data":
                data.append(value[1:] if value.startswith(" ") else value)
        if data:
            events.append((name, json.loads("\n".join(data))))
    return events


@pytest.fixture(scope="module")
def served_with_llm(fake, llm_assistant, tmp_path_factory):
    from assistant.api import create_app
    from servers import running

    config = llm_assistant.config.model_copy(update={"feedback_db": tmp_path_factory.mktemp("llm-api") / "fb.sqlite3"})
    with running(create_app(dataclasses.replace(llm_assistant, config=config), mount_ui=False)) as base:
        yield base


def test_sse_stream_never_carries_a_rejected_sentence(llm, served_with_llm):
    import httpx

    lies = ["退出后电工证作废，需重新考试[第四条]。", "电工属于第45批[附件第1项]。", "拟于2020年11月30日前退出目录[附件第1项]。"]
    first, second = GOOD.split("。", 1)
    llm.script(Reply.text(lies[0] + first + "。" + lies[1] + second + lies[2], chunk=3))
    with httpx.stream("POST", served_with_llm + "/api/ask/stream", json={"question": ELECTRICIAN}, timeout=30) as r:
        assert r.status_code == 200
        events = sse_events(r.read().decode("utf-8"))
    tokens = [data["text"] for name, data in events if name == "token"]
    assert tokens and all(lie.split("[")[0] not in t for t in tokens for lie in lies)
    assert all(w not in "".join(tokens) for w in ("作废", "第45批", "11月30日"))
    name, answer = events[-1]
    assert name == "answer" and answer["mode"] == "llm" and answer["answer"] == "".join(tokens) == shown(GOOD)
    # with every sentence rejected: a notice, then the offline answer, and still no rejected text
    llm.script(Reply.text("".join(lies), chunk=3))
    with httpx.stream("POST", served_with_llm + "/api/ask/stream", json={"question": ELECTRICIAN}, timeout=30) as r:
        events = sse_events(r.read().decode("utf-8"))
    names = [n for n, _ in events]
    assert names[:2] == ["status", "notice"] and names[-1] == "answer"
    tokens = "".join(d["text"] for n, d in events if n == "token")
    assert tokens == events[-1][1]["answer"] and events[-1][1]["fallback_reason"] == "llm_rejected"
    assert all(w not in tokens for w in ("作废", "第45批", "11月30日"))


def test_cli_prints_a_generated_answer_once(llm, llm_assistant):
    import io

    from assistant.cli import stream_answer

    llm.script(Reply.text(GOOD, chunk=3))
    out = io.StringIO()
    stream_answer(llm_assistant, ELECTRICIAN, out)
    printed = out.getvalue()
    assert printed.count(shown(GOOD)) == 1 and printed.split("依据")[0].count("组织实施") == 1, printed


def test_cli_prints_the_offline_answer_once_after_a_rejected_one(llm, llm_assistant, capsys):
    import io

    from assistant.cli import stream_answer

    llm.script(Reply.text(WRONG_BATCH, chunk=3))
    out = io.StringIO()
    stream_answer(llm_assistant, ELECTRICIAN, out)
    printed = out.getvalue()
    offline = llm_assistant.ground(ELECTRICIAN).offline
    assert "第一批" not in printed and printed.count(offline.answer) == 1, printed
    assert "核对" in capsys.readouterr().err  # the notice, on stderr


# ---- the real model's recorded outputs ------------------------------------------------------------------------------

FIXTURES = Path(__file__).parent / "fixtures" / "real_llm_outputs.jsonl"
RECORDED = [json.loads(line) for line in FIXTURES.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("record", RECORDED, ids=[f"{r['id']}-{r['label']}" for r in RECORDED])
def test_recorded_outputs_of_the_real_model(llm, llm_assistant, record):
    """Raw outputs of Qwen2.5-Coder-0.5B (benchmarks/llm_eval.py), replayed: what a person judged false, partial or
    a non-answer is never shown; the true ones are shown as generated answers."""
    llm.chooser = lambda request: (Reply.text(record["question"]) if "独立、完整的问题" in request.messages[0]["content"]
                                   else Reply.text(record["raw"], chunk=4))
    events = events_of(llm_assistant.stream(record["question"], record["history"]))
    shown = streamed_text(events)
    a = final(events)
    for text in record["never_shown"]:
        assert text not in shown and text not in a.answer, (record["note"], shown)
    if record["label"] == "true":
        assert a.mode == "llm" and a.answered and a.citations, (a.fallback_reason, record["note"])
    else:
        assert a.mode == "offline" and a.fallback_reason in ("llm_rejected", "llm_incomplete", "llm_no_citations",
                                                                  "llm_long_answer")


def test_generated_citations_are_numbered_in_order_of_first_use(llm, llm_assistant):
    llm.script(Reply.text(GOOD))
    a = llm_assistant.ask(ELECTRICIAN)
    assert a.mode == "llm"
    assert [c.marker for c in a.citations] == list(range(1, len(a.citations) + 1))
    first_use = [int(n) for n in dict.fromkeys(re.findall(r"\[(\d+)\]", a.answer))]
    assert first_use == [c.marker for c in a.citations][: len(first_use)] and markers_match(a)


# ---- which path answers (issue 19) ----------------------------------------------------------------------------

def with_reading(grounding: Grounding, confidence: float, applied: bool = True) -> Grounding:
    return grounding.model_copy(update={"frame": "batch", "confidence": confidence, "frame_applied": applied})


def test_a_confident_offline_answer_is_not_sent(llm, llm_assistant):
    grounding = with_reading(llm_assistant.ground(ELECTRICIAN), 0.95)
    llm.script(Reply.text(GOOD))
    events = events_of(reader(llm_assistant).stream(grounding))
    a = final(events)
    assert llm.requests == [] and a.mode == "offline" and a.answer == grounding.offline.answer
    assert a.fallback_reason == "llm_confident_offline" and a.path == "offline"
    assert a.path_reason.startswith("confident: frame batch 0.95")
    assert streamed_text(events) == a.answer and markers_match(a)


def test_a_confident_offline_answer_is_sent_to_be_rephrased_when_set(llm, llm_assistant):
    grounding = with_reading(llm_assistant.ground(ELECTRICIAN), 0.95)
    llm.script(Reply.text(GOOD))
    a = reader(llm_assistant, llm_rephrase_confident=True).run(grounding)
    assert a.mode == "llm" and a.path == "rephrase" and markers_match(a)
    assert "【参考答案】（" in llm.chat_requests()[0].text()


def test_an_unsure_offline_answer_is_read_again_from_the_sources(llm, llm_assistant):
    """Below the confidence setting the model answers from the sources, without the offline answer to copy."""
    grounding = with_reading(llm_assistant.ground(ELECTRICIAN), 0.6)
    llm.script(Reply.text(GOOD + RULE_OF_CLAUSE_4))
    a = reader(llm_assistant).run(grounding)
    [request] = llm.chat_requests()
    assert "【参考答案】（" not in request.text() and "【要求】" in request.text()
    assert grounding.offline.answer.split("[")[0] not in request.text()
    assert "\n[附件第1项] " in request.messages[0]["content"]  # the sources are there
    assert a.mode == "llm" and a.path == "second_reader" and a.path_reason.startswith("unsure: frame batch 0.60")
    # offline first: the offline answer whole, then only what the model added (GOOD restates it: not shown)
    assert a.answer == grounding.offline.answer + "\n" + a.addition and a.addition == "退出目录前已经发放的职业资格证书继续有效[3]。"
    assert markers_match(a) and "added 1 checked sentence" in a.path_reason
    # the frame not applied at all is unsure too, whatever its probability
    assert reader(llm_assistant).choose(with_reading(grounding, 0.99, applied=False)).path.value == "second_reader"


RULE_OF_CLAUSE_4 = "退出目录前已经发放的职业资格证书继续有效[第四条]。"  # true, and not in the offline answer


def test_a_declined_question_with_strong_evidence_is_sent_and_without_it_is_not(llm, llm_assistant):
    grounding = declined_offline(llm_assistant, PARAPHRASE)
    assert "第六条" in grounding.agreed_evidence  # both retrievers rank clause 六's sentence at the top
    llm.script(Reply.text("有关单位职业技能鉴定中心可结合实际探索向社会培训评价组织转型[第六条]。"))
    a = reader(llm_assistant).run(grounding)
    assert len(llm.chat_requests()) == 1 and a.mode == "llm" and a.answered and a.path == "evidence"
    assert markers_match(a) and a.answer.endswith("转型[1]。")
    llm.script(Reply.text("有关单位职业技能鉴定中心可结合实际探索向社会培训评价组织转型[第六条]。"))
    a = reader(llm_assistant).run(grounding.model_copy(update={"agreed_evidence": []}))
    assert llm.requests == [] and a.mode == "offline" and a.fallback_reason == "llm_outside_notice"
    # a decline the frame model is sure of (off topic, a practical matter …) is not sent, evidence or not
    sure = grounding.model_copy(update={"frame": "decline_practical", "confidence": 0.97, "frame_applied": True})
    a = reader(llm_assistant).run(sure)
    assert llm.requests == [] and a.fallback_reason == "llm_outside_notice" and a.path_reason.startswith("confident_decline")


def test_markers_match_citations_in_both_modes(llm, llm_assistant):
    for question in (ELECTRICIAN, "森林消防员归哪个部门管？", "附件第8项是什么？"):
        offline = llm_assistant.ask(question, use_llm=False)
        assert offline.answered and markers_match(offline), offline.answer
    llm.script(Reply.text(GOOD))
    generated = llm_assistant.ask(ELECTRICIAN)
    assert generated.mode == "llm" and markers_match(generated)
    assert re.findall(r"\[\d+\]", generated.answer)[:2] == ["[1]", "[2]"]


# ---- rewrites never carry a fact ------------------------------------------------------------------------------

LYING_REWRITE = "美容师属于附件第12项第二批，归哪个部门管？"  # item and batch both false, neither said by the user


def test_a_lying_rewrite_never_reaches_retrieval_the_prompt_or_the_answer(llm, llm_assistant, monkeypatch):
    queries, offline_questions = [], []
    retrieve, answer = llm_assistant.retriever.run, llm_assistant.answerer.run
    monkeypatch.setattr(llm_assistant.retriever, "run", lambda q, *a, **k: queries.append(q) or retrieve(q, *a, **k))
    monkeypatch.setattr(llm_assistant.answerer, "run",
                        lambda q, *a, **k: offline_questions.append(q) or answer(q, *a, **k))
    llm.script(Reply.text(LYING_REWRITE),
               Reply.text("美容师由人力资源和社会保障部组织实施，属于第一批，拟于2020年9月30日前退出目录[附件第57项][第二条]。"))
    a = llm_assistant.ask("那它归哪个部门管？", HISTORY)
    assert all("第12项" not in q and "第二批" not in q for q in queries + offline_questions)
    assert offline_questions == ["那它归哪个部门管？"]  # the offline answerer reads only what the user said
    rewrite, request = llm.chat_requests()
    assert LYING_REWRITE not in request.text() and "第12项" not in request.text()
    assert "第12项" not in a.answer and "第二批" not in a.answer and a.mode == "llm"


def test_guard_rewrite_keeps_references_resolved_and_drops_added_facts(llm_assistant):
    facts = answerer(llm_assistant)._facts
    history = HISTORY
    assert guard_rewrite("美容师归哪个部门管？", "那它归哪个部门管？", history, facts) == ("美容师归哪个部门管？", "")
    for lie, kind in (("美容师属于第二批吗？", "batch"), ("美容师在附件第12项吗？", "item"),
                      ("美容师2020年10月1日退出吗？", "date"), ("美容师由水利部管吗？", "department"),
                      ("美容师有3个工种吗？", "number"), ("电工归哪个部门管？", "occupation")):
        kept, why = guard_rewrite(lie, "那它呢？", history, facts)
        assert kept is None and why.startswith(kind), (lie, why)
    # a fact the user said (not only the assistant) may stay
    said = [Turn(role="user", content="美容师是第一批吗？"), Turn(role="assistant", content="是的。")]
    assert guard_rewrite("美容师第1批什么时候退出？", "那什么时候退？", said, facts)[0] is not None


# ---- a stream that falls back says so at once ------------------------------------------------------------------

def test_a_stream_that_falls_back_says_so_at_once_and_streams_whole_sentences(llm, llm_assistant):
    """Order, not time: the status line comes before the model is even asked; the model's first sentence is
    false, so the notice comes right after it is read (the request closed, not read on), and the offline answer
    follows a whole sentence a token."""
    llm.script(Reply.text(WRONG_BATCH + GOOD * 6, chunk=4, delay=0.03))
    stream = llm_assistant.stream(ELECTRICIAN)
    events = [next(stream)]
    assert events[0].kind == "status" and llm.requests == []  # shown before any request was sent
    events += list(stream)
    assert events[1].kind == "notice"
    a = final(events)
    assert a.fallback_reason == "llm_rejected" and streamed_text(events) == a.answer
    tokens = [e.text for e in events if e.kind == "token"]
    assert all(re.search(r"[。！？]\s*$|\n$", t) for t in tokens[:-1]), tokens
    assert llm.wait_for_abandoned(1)  # the request was closed: the server stops writing


def test_a_decline_of_a_false_premise_is_not_sent_whatever_the_evidence(llm, llm_assistant):
    """blind11 l2-077: "2021年还有哪些证要取消？" is declined offline (the notice is about 2020); clause 二 ranked first
    by both retrievers must not send it: the model answered with clause 二's 今年年底前."""
    grounding = llm_assistant.ground("2021年还有哪些证要取消？")
    assert not grounding.offline.answered and "other_year" in grounding.route
    unsure = grounding.model_copy(update={"frame_applied": False, "confidence": 0.43, "agreed_evidence": ["第二条"]})
    a = reader(llm_assistant).run(unsure)
    assert llm.requests == [] and a.fallback_reason == "llm_outside_notice"
    assert a.path_reason.startswith("declined_for_cause")

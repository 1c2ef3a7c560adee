"""Issue 19: the second reader, offline first (assistant/addition.py), against the scripted endpoint.

Order and content, never time (the machine is noisy): the first event is a whole sentence of the offline answer and
comes before any request is sent; the model's sentences are shown only when they pass every check and state a
cited fact the offline answer lacks; a stalled, copying or lying model leaves the offline answer and a clean end."""
from __future__ import annotations

import dataclasses
import json
import re

import pytest

from assistant.addition import READING
from assistant.generate import sentences_of
from fake_llm import Reply
from test_generate import (  # noqa: F401 — the fixtures of the generation tests
    ELECTRICIAN, GOOD, HISTORY, RULE_OF_CLAUSE_4, SHORT, WRONG_BATCH, declined_offline, fake, final, llm,
    llm_assistant, markers_match, reader, sse_events, streamed_text, time_limit, with_reading,
)

LIES = ("退出目录后电工证作废，需要重新考试[第四条]。", "电工属于第一批，拟于2020年9月30日前退出目录[附件第1项]。")


def unsure(assistant, question=ELECTRICIAN, history=()):
    grounding = with_reading(assistant.ground(question, list(history)), 0.6)
    assert grounding.offline.answered
    return grounding


def opening(events, offline) -> int:
    """Asserts the opening (the offline answer a whole sentence a token, the offline event, the status line);
    the index of the first event after it."""
    sentences = sentences_of(offline.answer)
    n = len(sentences)
    assert [(e.kind, e.part, e.text) for e in events[:n]] == [("token", "offline", s) for s in sentences]
    assert events[n].kind == "offline" and events[n].answer.answer == offline.answer
    assert events[n + 1].kind == "status" and events[n + 1].state == "reading" and events[n + 1].text == READING
    return n + 2


def test_the_first_event_is_a_whole_offline_sentence_before_the_model_is_asked(llm, llm_assistant):
    grounding = unsure(llm_assistant)
    llm.script(Reply.text(GOOD + RULE_OF_CLAUSE_4))
    stream = reader(llm_assistant).stream(grounding)
    first = next(stream)
    assert first.kind == "token" and first.part == "offline"
    assert first.text == sentences_of(grounding.offline.answer)[0] and re.search(r"[。！？](\[\d+\])*$", first.text)
    assert llm.requests == []  # shown before any request was sent
    events = [first]
    while events[-1].kind != "status":
        events.append(next(stream))
    assert llm.requests == []  # the whole offline answer and the status line, still before the model is asked
    events += list(stream)
    after = opening(events, grounding.offline)
    assert [e.kind for e in events[after:]] == ["token", "status", "answer"] and events[after].part == "addition"
    a = final(events)
    assert streamed_text(events) == a.answer == grounding.offline.answer + "\n" + a.addition
    assert a.mode == "llm" and a.path == "second_reader" and a.fallback_reason is None and markers_match(a)
    assert events[-2].state == "done" and "核对" in events[-2].text
    # the offline answer's citations keep their markers; the addition's new source is numbered after them
    assert a.citations[:len(grounding.offline.citations)] == grounding.offline.citations
    assert a.citations[-1].label == "第四条" and a.citations[-1].marker == len(a.citations)


@pytest.mark.parametrize("copy", [
    GOOD,  # the offline answer's facts in other words
    "电工属于第二批，拟于2020年12月31日前退出目录[附件第1项][第二条]。",  # the offline answer's first sentence
])
def test_a_model_that_copies_the_offline_answer_adds_nothing_visible(llm, llm_assistant, copy):
    grounding = unsure(llm_assistant)
    llm.script(Reply.text(copy))
    events = list(reader(llm_assistant).stream(grounding))
    after = opening(events, grounding.offline)
    assert [e.kind for e in events[after:]] == ["status", "answer"]
    assert all(e.part == "offline" for e in events if e.kind == "token")
    a = final(events)
    assert a.answer == grounding.offline.answer == streamed_text(events) and a.addition is None
    assert a.mode == "offline" and a.fallback_reason == "llm_nothing_added" and a.path == "second_reader"
    assert "added nothing (llm_nothing_added)" in a.path_reason and "没有" in events[-2].text


def test_an_addition_that_fails_a_check_is_never_shown(llm, llm_assistant):
    grounding = unsure(llm_assistant)
    llm.script(Reply.text(LIES[0] + GOOD + LIES[1], chunk=3))
    events = list(reader(llm_assistant).stream(grounding))
    shown = streamed_text(events)
    a = final(events)
    assert all(w not in shown and w not in a.answer for w in ("作废", "重新考试", "第一批", "9月30日"))
    assert a.answer == grounding.offline.answer and a.mode == "offline"
    assert a.fallback_reason in ("llm_nothing_added", "llm_rejected")


def test_a_false_first_sentence_closes_the_request_and_the_offline_answer_stands(llm, llm_assistant):
    grounding = unsure(llm_assistant)
    llm.script(Reply.text(WRONG_BATCH + RULE_OF_CLAUSE_4 * 20, chunk=4, delay=0.02))
    events = list(reader(llm_assistant).stream(grounding))
    a = final(events)
    assert a.fallback_reason == "llm_rejected" and a.answer == grounding.offline.answer == streamed_text(events)
    assert "第四条" not in [c.label for c in a.citations]  # not read on after the false sentence
    assert llm.wait_for_abandoned(1)


@pytest.mark.parametrize("content", ["", "退出目录前已经发放的"])
def test_a_model_that_stalls_leaves_the_offline_answer_and_a_clean_end(llm, llm_assistant, content):
    grounding = unsure(llm_assistant)
    llm.script(Reply.stall(SHORT + 5, content=content))
    events = list(reader(llm_assistant, llm_timeout=SHORT).stream(grounding))
    after = opening(events, grounding.offline)
    assert [e.kind for e in events[after:]] == ["status", "answer"] and events[-2].state == "done"
    a = final(events)
    assert a.answer == grounding.offline.answer == streamed_text(events) and a.fallback_reason == "llm_timeout"
    assert "以上回答" in events[-2].text and "notice" not in [e.kind for e in events]
    assert llm.wait_for_abandoned(1)  # the stalled request was closed


def test_a_broken_endpoint_leaves_the_offline_answer(llm, llm_assistant):
    grounding = unsure(llm_assistant)
    llm.script(Reply.http(500))
    events = list(reader(llm_assistant).stream(grounding))
    opening(events, grounding.offline)
    a = final(events)
    assert a.answer == grounding.offline.answer and a.fallback_reason == "llm_http" and a.mode == "offline"


def test_a_follow_up_shows_the_offline_answer_before_the_rewrite_is_asked(llm, llm_assistant):
    """The rewrite of a follow-up takes a model call: it comes after the offline answer, not before it."""
    config = llm_assistant.config.model_copy(update={"llm_rephrase_confident": False, "llm_confident_at": 1.0})
    assistant = dataclasses.replace(llm_assistant, config=config, _llm=None)
    llm.script(Reply.text("美容师由哪个部门负责实施？"), Reply.text("美容师属于第一批[附件第57项]。"))
    stream = assistant.stream("那它归哪个部门管？", HISTORY)
    first = next(stream)
    assert first.kind == "token" and first.part == "offline" and llm.requests == []
    events = [first] + list(stream)
    assert len(llm.chat_requests()) == 2  # the rewrite, then the answer
    a = final(events)
    assert streamed_text(events) == a.answer and a.path == "second_reader"


def test_a_decline_sent_on_evidence_shows_a_status_first_then_the_models_checked_answer(llm, llm_assistant):
    grounding = declined_offline(llm_assistant, "鉴定中心能转型吗？")
    llm.script(Reply.text("有关单位职业技能鉴定中心可结合实际探索向社会培训评价组织转型[第六条]。"))
    stream = reader(llm_assistant).stream(grounding)
    first = next(stream)
    assert first.kind == "status" and first.state == "reading" and "条款" in first.text and llm.requests == []
    events = [first] + list(stream)
    a = final(events)
    assert a.path == "evidence" and a.mode == "llm" and streamed_text(events) == a.answer and markers_match(a)
    assert {e.part for e in events if e.kind == "token"} == {"answer"}
    # the model declining or lying: the status, then the notice and the offline decline
    llm.script(Reply.text(LIES[0]))
    events = list(reader(llm_assistant).stream(grounding))
    assert [e.kind for e in events][:2] == ["status", "notice"]
    assert final(events).answer == grounding.offline.answer == streamed_text(events)


@pytest.fixture(scope="module")
def served_unsure(fake, llm_assistant, tmp_path_factory):
    """The HTTP API with the product's path settings and every reading unsure (the frame model is not loaded)."""
    from assistant.api import create_app
    from servers import running

    config = llm_assistant.config.model_copy(update={
        "feedback_db": tmp_path_factory.mktemp("llm-addition") / "fb.sqlite3",
        "llm_rephrase_confident": False, "llm_confident_at": 1.0})
    with running(create_app(dataclasses.replace(llm_assistant, config=config, _llm=None))) as base:
        yield base


def test_the_sse_stream_carries_the_offline_answer_first_and_the_addition_after(llm, served_unsure, llm_assistant):
    import httpx

    offline = llm_assistant.ask(ELECTRICIAN, use_llm=False)
    llm.script(Reply.text(LIES[0] + GOOD + RULE_OF_CLAUSE_4, chunk=3))
    with httpx.stream("POST", served_unsure + "/api/ask/stream", json={"question": ELECTRICIAN}, timeout=30) as r:
        assert r.status_code == 200
        events = sse_events(r.read().decode("utf-8"))
    names = [n for n, _ in events]
    n = len(sentences_of(offline.answer))
    assert names == ["token"] * n + ["offline", "status", "token", "status", "answer"], names
    assert [d["part"] for name, d in events if name == "token"] == ["offline"] * n + ["addition"]
    assert events[n][1]["answer"] == offline.answer and events[n + 1][1]["state"] == "reading"
    answer = events[-1][1]
    tokens = "".join(d["text"] for name, d in events if name == "token")
    assert tokens == answer["answer"] == offline.answer + "\n" + answer["addition"]
    assert "作废" not in tokens and answer["path"] == "second_reader" and answer["mode"] == "llm"
    used = set(re.findall(r"\[(\d+)\]", answer["answer"]))
    assert used == {str(c["marker"]) for c in answer["citations"]}
    # the chat's stream: the same order, the offline event with its source cards
    with httpx.stream("POST", served_unsure + "/ui/ask/stream", json={"question": ELECTRICIAN}, timeout=30) as r:
        ui = sse_events(r.read().decode("utf-8"))
    offline_event = next(d for name, d in ui if name == "offline")
    assert offline_event["cards"] and offline_event["answer"]["answer"] == offline.answer
    assert [n for n, _ in ui][-1] == "answer" and json.dumps(ui[-1][1], ensure_ascii=False)


def test_the_cli_prints_the_answer_with_its_addition_once(llm, llm_assistant, capsys):
    import io

    from assistant.cli import stream_answer

    config = llm_assistant.config.model_copy(update={"llm_rephrase_confident": False, "llm_confident_at": 1.0})
    assistant = dataclasses.replace(llm_assistant, config=config, _llm=None)
    llm.script(Reply.text(GOOD + RULE_OF_CLAUSE_4, chunk=3))
    out = io.StringIO()
    stream_answer(assistant, ELECTRICIAN, out)
    printed = out.getvalue()
    offline = llm_assistant.ask(ELECTRICIAN, use_llm=False)
    assert printed.count(offline.answer) == 1 and printed.count("继续有效[3]") == 1, printed
    assert "复核" in capsys.readouterr().err  # the status lines, on stderr

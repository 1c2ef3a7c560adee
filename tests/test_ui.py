"""The chat pages' logic without a browser: text escaping, sources, the annex filter, the chat session."""
from __future__ import annotations

import re

import pytest

from assistant.feedback import FeedbackStore
from assistant.records import Answer, Citation
from ui.app import (
    ALL, ChatSession, annex_summary, as_text, build_chat, build_widget, filter_annex, plain_copy, sources_message,
)


@pytest.mark.parametrize("raw", [
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "**粗体** _斜体_ `代码` ~~删除~~",
    "[链接](javascript:alert(1)) ![图](x.png)",
    "https://example.com www.example.com a@b.cn",
    "1. 列表\n- 项目\n+ 项目\n# 标题\n> 引用\n---\n| a | b |",
    "&lt; &amp; \\* 已转义",
])
def test_as_text_leaves_nothing_markdown_or_html_could_act_on(raw):
    out = as_text(raw)
    assert not re.search(r"[<>`*_\[\]!|~#@:\\]", out.replace("&#", "")), out
    assert not re.search(r"(?m)^\s*(\d+[.)]|[-+=>])", out), out
    assert "www." not in out
    # Every character is still there: the escapes are numeric character references of the same characters.
    decoded = re.sub(r"&#(\d+);", lambda m: chr(int(m.group(1))), out)
    assert decoded == raw


def test_as_text_keeps_chinese_and_ordinary_punctuation_readable():
    text = "「电工」列在附件第1项，属于第二批（2020年12月31日前）。还有效吗？是的, 有效."
    assert as_text(text) == text


def test_sources_message_is_a_folded_message_with_labels_and_quotes():
    answer = Answer(question="q", answer="a", answered=True, citations=[
        Citation(source="annex", item=1, label="附件第1项", quote="1 机械设备修理人员 电工 <b>x</b>"),
        Citation(source="notice", clause=2, label="第二条", quote="第一句。\n第二句。"),
    ])
    msg = sources_message(answer)
    assert msg["role"] == "assistant"
    assert msg["metadata"] == {"title": "出处（2）：附件第1项、第二条", "status": "done"}
    assert "**附件第1项**\n1 机械设备修理人员 电工 &#60;b&#62;x&#60;/b&#62;" in msg["content"]
    assert "**第二条**\n第一句。\n第二句。" in msg["content"]


def test_plain_copy_is_the_answer_with_its_sources():
    answer = Answer(question="q", answer="属于第二批。", answered=True, citations=[
        Citation(source="annex", item=1, label="附件第1项", quote="1 机械设备修理人员 电工\n第二行")])
    assert plain_copy(answer) == "属于第二批。\n\n依据（人社厅发〔2020〕80号）：\n【附件第1项】1 机械设备修理人员 电工 第二行"
    assert plain_copy(Answer(question="q", answer="无法回答。", answered=False)) == "无法回答。"


# ---- the annex browser --------------------------------------------------------------------------------

def test_filter_annex_by_keyword_batch_and_department(corpus):
    rows = corpus.annex_rows
    assert len(filter_annex(rows)) == len(rows) == 192
    assert {r.occupation for r in filter_annex(rows, "美容")} == {"美容师", "美发师"}  # 美容美发服务人员
    assert {r.occupation for r in filter_annex(rows, "電工")} >= {"电工"}  # 繁体 folded
    assert {r.item for r in filter_annex(rows, "57")} == {57}
    first = filter_annex(rows, batch="第一批")
    assert len(first) == 29 and {r.batch for r in first} == {"1"}
    assert len(filter_annex(rows, batch="拟依法调整为准入类职业资格")) == 7
    tcm = filter_annex(rows, department="国家中医药管理局")
    assert len(tcm) == 3 and all("国家中医药管理局" in r.departments for r in tcm)
    assert filter_annex(rows, "美容", batch="第二批") == []
    assert filter_annex(rows, "没有这个职业") == []
    assert len(filter_annex(rows, "", ALL, ALL)) == 192


def test_annex_summary_counts(corpus):
    intro, by_batch, by_dept = annex_summary(corpus.annex_rows)
    assert "**76**" in intro and "**192**" in intro
    table = {row["批次"]: (row["涉及项数"], row["职业行数"]) for _, row in by_batch.iterrows()}
    # The notice: 14 items (29 occupations) in batch 1, 66 items (156 occupations) in batch 2.
    assert table["第一批"] == (14, 29) and table["第二批"] == (66, 156)
    assert table["拟依法调整为准入类职业资格"][1] == 7
    depts = dict(zip(by_dept["实施部门（单位）"], by_dept["职业行数"]))
    assert depts["国家中医药管理局"] == 3 and len(depts) == 26


# ---- the chat session, driven like the page drives it ----------------------------------------------------

@pytest.fixture()
def session(assistant, tmp_path):
    return ChatSession(assistant, FeedbackStore(tmp_path / "fb.sqlite3"), channel="chat")


def run(session, message, chat=None, turns=None, records=None):
    *_, last = session.respond(message, chat or [], turns or [], records or [], "")
    return last


def test_respond_streams_then_adds_sources_history_and_plain_text(session):
    steps = list(session.respond("电工证什么时候退出目录？", [], [], [], ""))
    assert len(steps) >= 3  # the question, token deltas, the final answer
    chat, box, turns, records, plain = steps[-1]
    assert box == ""
    assert [m["role"] for m in chat] == ["user", "assistant", "assistant"]
    assert "第二批" in chat[1]["content"]
    assert chat[2]["metadata"]["title"].startswith("出处（")
    assert "附件第1项" in chat[2]["metadata"]["title"]
    assert turns[0] == {"role": "user", "content": "电工证什么时候退出目录？"}
    assert turns[1]["role"] == "assistant" and "第二批" in turns[1]["content"]
    assert records == [{"indices": [1, 2], "answer": records[0]["answer"], "feedback_id": None}]
    assert "【附件第1项】" in plain
    # A follow-up uses the turns kept so far.
    chat, _, turns, records, _ = run(session, "那它的实施部门呢？", chat, turns, records)
    assert "应急管理部" in turns[-1]["content"] and len(records) == 2 and records[1]["indices"] == [4, 5]


def test_respond_refuses_an_empty_question_without_asking(session):
    chat, box, turns, records, plain = run(session, "   ")
    assert (chat, box, turns, records) == ([], "   ", [], [])


def test_respond_shows_user_text_escaped(session):
    chat, *_ = run(session, "<img src=x onerror=alert(1)>")
    assert chat[0]["content"] == "&#60;img src=x onerror=alert(1)&#62;"


class _Like:
    def __init__(self, index, liked):
        self.index, self.liked = index, liked


def test_like_and_comment_store_feedback(session):
    chat, _, turns, records, _ = run(session, "美容师是第几批？")
    chat, _, turns, records, _ = run(session, "电工证什么时候退出目录？", chat, turns, records)
    records, target, box, note, comment = session.like(records, None, _Like(2, False))  # 👎 on 1st answer's sources
    assert box["visible"] is True and "感谢反馈" in note
    first = target
    records, target, *_ = session.like(records, target, _Like(4, True))  # 👍 on the 2nd answer
    assert target != first
    records, target, *_ = session.like(records, target, _Like(1, True))  # changed to 👍 on the 1st: same row
    assert target == first
    box, status = session.comment(target, "清楚")  # the note goes to the answer rated last
    assert "已收到" in status
    rows = {r["question"]: r for r in session.store.rows()}
    assert len(rows) == 2
    beauty = rows["美容师是第几批？"]
    assert (beauty["rating"], beauty["comment"], beauty["channel"]) == ("up", "清楚", "chat")
    assert "附件第57项" in [c["label"] for c in beauty["citations"]]
    assert rows["电工证什么时候退出目录？"]["comment"] == ""
    # A like on the user's own message is not feedback on an answer.
    assert session.like(records, target, _Like(0, True))[:2] == (records, target)
    assert len(session.store.rows()) == 2


def test_pages_build(assistant, tmp_path):
    config = assistant.config.model_copy(update={"feedback_db": tmp_path / "fb.sqlite3"})
    chat = build_chat(assistant, config)
    widget = build_widget(assistant, config)
    assert chat.title.startswith("职业资格退出目录政策问答")
    assert "小窗" in widget.title


def test_respond_replaces_void_generated_text_with_the_offline_answer(assistant, tmp_path):
    import dataclasses
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    config = assistant.config.model_copy(update={"llm_enabled": True, "llm_base_url": f"http://127.0.0.1:{dead}/v1",
                                                 "llm_model": "test-model", "llm_timeout": 5.0})
    llm_session = ChatSession(dataclasses.replace(assistant, config=config), None, channel="chat")
    chat, _, turns, records, _ = run(llm_session, "电工证什么时候退出目录？")
    offline = assistant.ask("电工证什么时候退出目录？")
    assert chat[1]["content"] == as_text(offline.answer)
    assert records[0]["answer"]["fallback_reason"].startswith("llm_")
    assert turns[-1]["content"] == offline.answer

"""The chat pages' server side without a browser: source cards, the plain-text copy, the annex filter and the
page address that opens it, the chat's own endpoints (/ui/…) and the zh-CN page, against the real app."""
from __future__ import annotations

import json
import re

import httpx
import pytest

from assistant.feedback import FeedbackStore
from assistant.records import Answer, Citation, SourceRow
from servers import live_app
from ui.app import (ALL, SORTS, ZhPage, annex_csv, annex_request, annex_summary, batch_choices, filter_annex,
                    load_aliases, search_words, social_meta, static_file)
from ui.cards import annex_link, card_text, listed_items, plain_answer_text, plain_text, presented, source_cards

ELECTRICIAN = "电工证什么时候退出目录？"
TIMEOUT = httpx.Timeout(60.0, connect=5.0)


# ---- source cards --------------------------------------------------------------------------------------

def test_cards_take_markers_and_rows_from_the_answer(corpus, profile):
    answer = Answer(question="q", answer="电工属于第二批[2]，见第二条[1]。", answered=True, citations=[
        Citation(source="annex", item=1, label="附件第1项", quote="1 机械设备修理人员 电工 …", marker=2,
                 qualification="机械设备修理人员",
                 rows=[SourceRow(occupations=["电工"], departments="应急管理部、人力资源和社会保障部", batch="第二批",
                                 deadline="2020年12月31日前")]),
        Citation(source="notice", clause=2, label="第二条", quote="其他部门……第二批退出。", marker=1),
    ])
    cards = source_cards(answer, corpus, profile)
    assert [(c.marker, c.label) for c in cards] == [(1, "第二条"), (2, "附件第1项")]  # in marker order
    clause, annex = cards
    assert clause.clause_text == corpus.clause(2).text and clause.clause_text.startswith("二、")
    assert annex.qualification == "机械设备修理人员" and annex.item == 1
    assert [(r.occupations, r.departments, r.when) for r in annex.rows] == [
        (["电工"], "应急管理部、人力资源和社会保障部", "第二批，2020年12月31日前退出")]


def test_cards_without_markers_or_rows_are_numbered_in_order_and_filled_from_the_corpus(corpus, profile):
    answer = Answer(question="q", answer="a", answered=True, citations=[
        Citation(source="annex", item=57, label="附件第57项", quote="57 美容美发服务人员 美容师 人力资源和社会保障部 1"),
        Citation(source="notice", clause=4, label="第四条", quote="退出目录前已发放的职业资格证书继续有效。", marker=1),
        Citation(source="annex", item=25, label="附件第25项", quote=""),
        Citation(source="notice", label="文头", quote="人社厅发〔2020〕80号"),
    ])
    cards = source_cards(answer, corpus, profile)
    assert [(c.marker, c.label) for c in cards] == [(1, "第四条"), (2, "附件第57项"), (3, "附件第25项"), (4, "文头")]
    beauty = cards[1]
    # Only the quoted occupation of item 57, with the item's name and fields from the annex itself.
    assert beauty.qualification == "美容美发服务人员"
    assert [(r.occupations, r.departments, r.batch, r.deadline) for r in beauty.rows] == [
        (["美容师"], "人力资源和社会保障部", "第一批", "2020年9月30日前")]
    # No quote: the whole item; item 25 prints 重冶金法冶炼工 twice, the card names it once.
    metal = cards[2]
    names = [o for r in metal.rows for o in r.occupations]
    assert len(names) == len(set(names)) and "重冶金法冶炼工" in names
    assert {o for o in names} == {r.occupation for r in corpus.rows_of_item(25)}
    assert cards[3].clause_text is None  # 文头 has no clause to read in full


def test_licensed_rows_say_so_instead_of_a_deadline(corpus, profile):
    item = next(r.item for r in corpus.annex_rows if r.is_licensed)
    card = source_cards(Answer(question="q", answer="a", answered=True, citations=[
        Citation(source="annex", item=item, label=f"附件第{item}项")]), corpus, profile)[0]
    licensed = [r for r in card.rows if r.deadline is None]
    assert licensed and all(r.when == "拟依法调整为准入类职业资格" for r in licensed)


# ---- plain text ----------------------------------------------------------------------------------------

def test_plain_answer_text_drops_markdown():
    text = "**电工**属于第二批[1]。\n- 第一项 `代码`\n* 第二项\n## 标题\n见[附件目录](./?annex=1)。"
    assert plain_answer_text(text) == "电工属于第二批[1]。\n・第一项 代码\n・第二项\n标题\n见附件目录（./?annex=1）。"


def test_plain_text_is_the_answer_and_its_numbered_sources(corpus, profile):
    answer = Answer(question="q", answer="「电工」属于**第二批**[1]。", answered=True, citations=[
        Citation(source="annex", item=1, label="附件第1项", quote="1 机械设备修理人员 电工 应急管理部、人力资源和社会保障部 2"),
        Citation(source="notice", clause=2, label="第二条", quote="其他部门（单位）组织实施的\n66 项职业资格拟于 12 月 31 日前第二批退出。"),
    ])
    text = plain_text(answer, source_cards(answer, corpus, profile))
    assert text == ("「电工」属于第二批[1]。\n\n依据（人社厅发〔2020〕80号）：\n"
                    "[1] 附件第1项「机械设备修理人员」：电工（实施部门：应急管理部、人力资源和社会保障部；第二批，2020年12月31日前退出）\n"
                    "[2] 第二条：「其他部门（单位）组织实施的 66 项职业资格拟于 12 月 31 日前第二批退出。」")
    assert "*" not in text
    generated = answer.model_copy(update={"answer": "属于第二批[附件第1项]，见[第二条]。[未知]"})
    assert plain_text(generated, source_cards(generated, corpus, profile)).startswith("属于第二批[1]，见[2]。[未知]\n")
    declined = Answer(question="q", answer="通知没有涉及这个问题。", answered=False)
    assert plain_text(declined, []) == "通知没有涉及这个问题。"


def test_presented_answers_from_the_real_assistant(assistant):
    for question in (ELECTRICIAN, "第一批有哪些？", "退出目录前发的证书还有效吗？", "今天天气怎么样"):
        answer = assistant.ask(question)
        shown = presented(answer, assistant.corpus, assistant.profile)
        assert shown["answer"] == answer.to_dict()
        cards = [c for c in shown["cards"] if c["source"] != "list"]
        assert [c["marker"] for c in cards] == list(range(1, len(answer.citations) + 1))
        assert {c["label"] for c in cards} == {c.label for c in answer.citations}
        for card in cards:
            if card["source"] == "annex":
                assert card["qualification"] and card["rows"], card
                assert all(r["occupations"] and r["departments"] and r["when"] for r in card["rows"])
            assert card_text_line(card) in shown["plain"]
        assert "**" not in shown["plain"] and shown["plain"].startswith(plain_answer_text(answer.answer))
    electrician = presented(assistant.ask(ELECTRICIAN), assistant.corpus, assistant.profile)
    annex = next(c for c in electrician["cards"] if c["source"] == "annex")
    assert (annex["item"], annex["qualification"], annex["rows"][0]["occupations"]) == (1, "机械设备修理人员", ["电工"])
    assert annex["rows"][0]["when"] == "第二批，2020年12月31日前退出"


@pytest.mark.parametrize("question, items", [("第一批有哪些？", 14), ("第二批有哪些？", 66)])
def test_every_item_of_a_listed_answer_is_reachable_as_a_source(assistant, question, items):
    """Answers cite at most a dozen sources; the list card names every item the list lines name, with its fields,
    and the plain-text copy carries all of them."""
    answer = assistant.ask(question)
    listed = [item for item, _ in listed_items(answer.answer)]
    assert len(listed) == items
    shown = presented(answer, assistant.corpus, assistant.profile)
    cards = shown["cards"]
    list_cards = [c for c in cards if c["source"] == "list"]
    assert len(list_cards) == 1 and list_cards[0]["marker"] == len(cards) == len(answer.citations) + 1
    entries = list_cards[0]["entries"]
    assert [e["item"] for e in entries] == listed
    for entry in entries:
        assert entry["qualification"] and entry["rows"]
        assert all(r["occupations"] and r["departments"] and r["when"] for r in entry["rows"])
        assert f"第{entry['item']}项「{entry['qualification']}」" in shown["plain"]
    # The rows a line names, not the whole item: item 1 lists only its batch-2 occupations under 第二批.
    if question == "第二批有哪些？":
        first = entries[0]
        assert first["item"] == 1 and "电工" in [o for r in first["rows"] for o in r["occupations"]]
        assert all("第二批" in r["when"] for e in entries for r in e["rows"])


def test_no_list_card_for_an_answer_without_a_list(assistant):
    shown = presented(assistant.ask(ELECTRICIAN), assistant.corpus, assistant.profile)
    assert all(c["source"] != "list" for c in shown["cards"])


def card_text_line(card: dict) -> str:
    from ui.cards import SourceCard
    return card_text(SourceCard.model_validate(card))


# ---- the annex tab, opened from an answer ---------------------------------------------------------------

def test_annex_link_from_the_answers_filter(profile):
    def link(f):
        return annex_link(Answer(question="q", answer="共66项…", answered=True, annex_filter=f), profile)
    assert link({"batch": "2"}) == "./?annex=1&batch=%E7%AC%AC%E4%BA%8C%E6%89%B9"
    assert link(None) is None and link({}) is None
    assert "department=" in link({"department": "国家中医药管理局"})


def test_annex_request_reads_the_page_address(profile):
    batches = batch_choices(profile)
    assert list(batches)[:2] == ["第一批", "第二批"]  # the words of clause 二, through the profile
    assert annex_request({}, batches) == (False, "", ALL, ALL)
    assert annex_request({"annex": "1", "batch": "第二批"}, batches) == (True, "", "第二批", ALL)
    assert annex_request({"annex": "1", "batch": "第九批", "department": "国家中医药管理局"}, batches) == (
        True, "", ALL, "国家中医药管理局")


def test_filter_annex_by_keyword_batch_and_department(corpus, profile):
    rows = corpus.annex_rows
    assert len(filter_annex(rows, profile)) == len(rows) == 192
    assert {r.occupation for r in filter_annex(rows, profile, "美容")} == {"美容师", "美发师"}  # 美容美发服务人员
    assert {r.occupation for r in filter_annex(rows, profile, "電工")} >= {"电工"}  # 繁体 folded
    assert {r.item for r in filter_annex(rows, profile, "57")} == {57}
    first = filter_annex(rows, profile, batch="第一批")
    assert len(first) == 29 and {r.batch for r in first} == {"1"}
    assert len(filter_annex(rows, profile, batch="拟依法调整为准入类职业资格")) == 7
    tcm = filter_annex(rows, profile, department="国家中医药管理局")
    assert len(tcm) == 3 and all("国家中医药管理局" in r.departments for r in tcm)
    assert filter_annex(rows, profile, "美容", batch="第二批") == []
    assert filter_annex(rows, profile, "没有这个职业") == []


def test_annex_search_splits_on_spaces_and_understands_the_chats_aliases(corpus, profile):
    rows = corpus.annex_rows
    assert search_words("电工 第二批") == ["电工", "第二批"] and search_words("電工\u3000第二批，") == ["电工", "第二批"]
    found = filter_annex(rows, profile, "电工 第二批")
    assert found and all("电工" in r.occupation + r.qualification for r in found) and {r.batch for r in found} == {"2"}
    assert filter_annex(rows, profile, "电工 第一批") == []
    aliases = load_aliases(corpus_dir(profile) / "aliases.csv")
    cooks = filter_annex(rows, profile, "厨师", aliases=aliases)
    assert {r.occupation for r in cooks} == {"中式烹调师", "西式烹调师"}
    assert filter_annex(rows, profile, "厨师") == []  # without the alias table: no such word in the annex


def corpus_dir(profile):
    from assistant.config import REPO_ROOT
    return REPO_ROOT / "corpus"


def test_annex_sorts_and_csv_has_a_header_row(corpus, profile):
    rows = corpus.annex_rows
    assert [r.item for r in filter_annex(rows, profile)] == sorted(r.item for r in rows)
    by_batch = filter_annex(rows, profile, sort="批次与退出时间")
    batches = [r.batch for r in by_batch]
    assert batches == sorted(batches, key=lambda b: list(batch_choices(profile).values()).index(b))
    by_dept = filter_annex(rows, profile, sort="实施部门")
    assert [r.departments_text() for r in by_dept] == sorted(r.departments_text() for r in rows)
    assert set(SORTS) >= {"序号（附件顺序）", "批次与退出时间", "实施部门", "职业资格名称"}
    path = annex_csv(filter_annex(rows, profile, batch="第二批"), profile)
    text = path.read_text(encoding="utf-8-sig")
    lines = text.splitlines()
    assert lines[0] == "序号,职业资格名称,职业（工种）,实施部门（单位）,批次,退出时间"
    assert len(lines) == 1 + 156 and all("第二批" in line for line in lines[1:])


def test_annex_summary_counts(corpus, profile):
    intro, by_batch, by_dept = annex_summary(corpus.annex_rows, profile)
    assert "**76**" in intro and "**192**" in intro
    table = {row["批次"]: (row["涉及项数"], row["职业行数"]) for _, row in by_batch.iterrows()}
    # The notice: 14 items (29 occupations) in batch 1, 66 items (156 occupations) in batch 2.
    assert table["第一批"] == (14, 29) and table["第二批"] == (66, 156)
    assert table["拟依法调整为准入类职业资格"][1] == 7
    depts = dict(zip(by_dept["实施部门（单位）"], by_dept["职业行数"]))
    assert depts["国家中医药管理局"] == 3 and len(depts) == 26


# ---- the pages and the chat's endpoints, served for real ------------------------------------------------

@pytest.fixture(scope="module")
def served(assistant, tmp_path_factory):
    with live_app(assistant, tmp_path_factory.mktemp("ui")) as pair:
        yield pair


@pytest.fixture(scope="module")
def client(served):
    with httpx.Client(base_url=served[0], timeout=TIMEOUT) as c:
        yield c


def sse(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = block.strip().split("\n")
        if not block.strip():
            continue
        name = next((ln[6:].strip() for ln in lines if ln.startswith("event:")), "message")
        data = "\n".join(ln[5:].lstrip() for ln in lines if ln.startswith("data:"))
        out.append((name, json.loads(data)))
    return out


@pytest.mark.parametrize("path", ["/", "/widget/"])
def test_pages_are_served_in_chinese_with_the_chat_script(client, path):
    r = client.get(path, headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200
    assert re.search(r'<html\s+lang="zh-CN"', r.text) and 'lang="en"' not in r.text
    head = r.text[r.text.index("<head>"):]
    # Our additions come first in <head>, before Gradio's module script reads the browser's language.
    assert head.index('"zh-CN"') < head.index('/ui/static/chat.js') < head.index('type="module"')
    assert int(r.headers["content-length"]) == len(r.content)


def test_chat_static_files(client):
    for name, kind in (("chat.js", "text/javascript"), ("chat.css", "text/css")):
        r = client.get(f"/ui/static/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind) and len(r.text) > 1000
        assert 'lang="zh-CN"' not in r.text  # not rewritten
        # A validator: the same file again is a 304; the hashed address the pages use is cached for good.
        assert r.headers["cache-control"] == "no-cache" and r.headers["etag"]
        again = client.get(f"/ui/static/{name}", headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and not again.content
        version = static_file(name)[1]
        assert f"/ui/static/{name}?v={version}" in client.get("/").text
        assert "immutable" in client.get(f"/ui/static/{name}?v={version}").headers["cache-control"]
    assert client.get("/ui/static/../app.py").status_code == 404
    assert client.get("/ui/static/nothing.js").status_code == 404
    assert "innerHTML" not in client.get("/ui/static/chat.js").text  # the chat builds text nodes only


def test_ui_ask_stream_sends_tokens_then_the_presented_answer(client, assistant):
    r = client.post("/ui/ask/stream", json={"question": ELECTRICIAN})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse(r.text)
    assert events[-1][0] == "answer" and {name for name, _ in events[:-1]} == {"token"}
    shown = events[-1][1]
    assert "".join(d["text"] for _, d in events[:-1]) == shown["answer"]["answer"]
    assert shown == json.loads(json.dumps(presented(assistant.ask(ELECTRICIAN), assistant.corpus, assistant.profile)))
    # A follow-up is resolved with the history the page sends.
    r = client.post("/ui/ask/stream", json={"question": "那它的实施部门呢？", "history": [
        {"role": "user", "content": ELECTRICIAN}, {"role": "assistant", "content": shown["answer"]["answer"]}]})
    assert "应急管理部" in sse(r.text)[-1][1]["answer"]["answer"]


@pytest.mark.parametrize("body, status", [
    ({"question": ""}, 422), ({"question": "x" * 2001}, 422), ({}, 422), ({"question": 5}, 422),
])
def test_ui_ask_stream_rejects_bad_questions_with_a_clear_error(client, body, status):
    r = client.post("/ui/ask/stream", json=body)
    assert r.status_code == status and "error" in r.json()


def test_ui_feedback_is_stored_with_its_channel_then_changed_and_commented(client, served):
    store = FeedbackStore(served[1].config.feedback_db)
    before = len(store.rows())
    answer = client.post("/ui/ask/stream", json={"question": ELECTRICIAN})
    shown = sse(answer.text)[-1][1]["answer"]
    r = client.post("/ui/feedback", json={"channel": "widget", "rating": "down", "question": shown["question"],
                                          "answer": shown["answer"], "citations": shown["citations"],
                                          "mode": shown["mode"]})
    assert r.status_code == 200
    row_id, token = r.json()["feedback_id"], r.json()["token"]
    # another client (no token, or a wrong one) cannot change it
    assert client.post("/ui/feedback", json={"feedback_id": row_id, "rating": "up"}).status_code == 404
    assert client.post("/ui/feedback", json={"feedback_id": row_id, "token": "x" * 32,
                                             "comment": "改掉"}).status_code == 404
    assert store.get(row_id)["rating"] == "down"
    assert client.post("/ui/feedback", json={"feedback_id": row_id, "token": token, "rating": "up"}).status_code == 200
    assert client.post("/ui/feedback", json={"feedback_id": row_id, "token": token,
                                             "comment": "清楚"}).status_code == 200
    rows = store.rows()
    assert len(rows) == before + 1
    row = store.get(row_id)
    assert (row["question"], row["rating"], row["comment"], row["channel"]) == (ELECTRICIAN, "up", "清楚", "widget")
    assert "附件第1项" in [c["label"] for c in row["citations"]]
    assert client.post("/ui/feedback", json={"feedback_id": 10**9, "rating": "up"}).status_code == 404
    assert client.post("/ui/feedback", json={"rating": "up"}).status_code == 422  # nothing to rate
    assert client.post("/ui/feedback", json={"channel": "elsewhere", "rating": "up", "question": "q",
                                             "answer": "a"}).status_code == 422


@pytest.mark.parametrize("path", ["/", "/widget/", "/ui/static/chat.js", "/ui/static/chat.css", "/widget.js"])
def test_pages_scripts_and_styles_are_compressed_with_a_validator(client, path):
    raw = client.get(path, headers={"Accept-Encoding": "identity"})
    assert raw.status_code == 200 and "content-encoding" not in raw.headers
    zipped = client.get(path, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and "Accept-Encoding" in zipped.headers["vary"]
    assert zipped.text == raw.text  # httpx decodes it
    assert int(zipped.headers["content-length"]) < len(raw.content) / 2
    br = client.get(path, headers={"Accept-Encoding": "br, gzip"})
    assert br.headers["content-encoding"] == "br" and br.text == raw.text
    etag = zipped.headers["etag"]
    assert client.get(path, headers={"If-None-Match": etag, "Accept-Encoding": "gzip"}).status_code == 304


def test_event_streams_and_the_api_are_not_buffered_or_compressed(client):
    r = client.post("/ui/ask/stream", json={"question": ELECTRICIAN}, headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in r.headers
    r = client.get("/healthz", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200


def test_pages_have_their_own_link_preview_and_no_developer_links(client):
    page = client.get("/").text
    head = page[:page.index("</head>")]
    for gone in ('content="Gradio"', "Click to try out the app!", 'content="{url}"', "gradio.app", "@Gradio"):
        assert gone not in head
    assert re.search(r'<meta property="og:title" content="职业资格退出目录政策问答[^"]*">', head)
    assert re.search(r'<meta property="og:description" content="[^"]*人社厅发〔2020〕80号[^"]*">', head)
    assert f'<meta property="og:url" content="{client.base_url}/">' in head
    assert head.count('property="og:title"') == 1
    assert "/docs" not in page and '"footer_links":[]' in page  # no settings panel, no API docs for workers
    assert '<meta property="og:url" content="https://x.example/?a=1&amp;b=&lt;2&gt;">' in social_meta(
        "https://x.example/?a=1&b=<2>")


def test_zh_page_rewrites_gradio_pages_only(client):
    page = ZhPage(None, head="<x>")
    gradio = b'<html\n\tlang="en"><head><title>t</title></head><body><gradio-app></gradio-app>'
    meta = social_meta("").encode()
    assert page.rewrite(gradio) == (b'<html\n\tlang="zh-CN"><head><x>' + meta +
                                    b'<title>t</title></head><body><gradio-app></gradio-app>')
    gradio_meta = b'<head><meta property="og:title" content="Gradio" />\n\t\t<meta\n\t\t\tname="twitter:image"\n\t\t\tcontent="x"\n\t\t/>'
    assert b"Gradio" not in page.rewrite(gradio_meta + b"<gradio-app>") and b"twitter:image" not in page.rewrite(
        gradio_meta + b"<gradio-app>")
    assert page.rewrite(b'<html lang="en"><head></head>') == b'<html lang="en"><head></head>'
    for path in ("/docs", "/widget-demo"):
        assert "chat.js" not in client.get(path).text

"""Feedback is stored with its question, answer and citations, and exported as CSV a spreadsheet can open safely."""
from __future__ import annotations

import csv
import io
import threading

import pytest

from assistant.feedback import CSV_COLUMNS, FeedbackStore, export_csv
from assistant.records import Citation

CITATIONS = [
    Citation(source="annex", item=1, label="附件第1项", quote="1 机械设备修理人员 电工 应急管理部、人力资源和社会保障部 2"),
    {"source": "notice", "clause": 2, "item": None, "label": "第二条", "quote": "……拟于 12 月 31 日前第二批退出。"},
]


@pytest.fixture()
def store(tmp_path):
    return FeedbackStore(tmp_path / "sub" / "feedback.sqlite3")


def test_add_stores_question_answer_and_citations(store):
    row_id = store.add(question="电工证什么时候退出目录？", answer="属于第二批。", rating="up", citations=CITATIONS,
                       answer_id="q1", mode="offline", channel="chat")
    [row] = store.rows()
    assert row["id"] == row_id
    assert (row["question"], row["answer"], row["rating"], row["comment"]) == (
        "电工证什么时候退出目录？", "属于第二批。", "up", "")
    assert [c["label"] for c in row["citations"]] == ["附件第1项", "第二条"]
    assert row["citations"][0]["quote"].startswith("1 机械设备修理人员")
    assert (row["answer_id"], row["mode"], row["channel"]) == ("q1", "offline", "chat")
    assert row["created_at"].endswith("+00:00")


def test_comment_and_changed_rating_update_the_same_row(store):
    row_id = store.add(question="美容师是第几批？", answer="第一批。", rating="up")
    assert store.update(row_id, rating="down")
    assert store.set_comment(row_id, "  应该写明退出时间  ")
    [row] = store.rows()
    assert (row["rating"], row["comment"]) == ("down", "应该写明退出时间")
    assert store.counts() == {"up": 0, "down": 1}
    assert store.set_comment(row_id + 100, "no such row") is False


@pytest.mark.parametrize("kwargs, message", [
    ({"rating": "meh"}, "rating must be 'up' or 'down'"),
    ({"rating": "up", "comment": "长" * 2001}, "longer than 2000"),
])
def test_invalid_feedback_is_refused(store, kwargs, message):
    with pytest.raises(ValueError, match=message):
        store.add(question="q", answer="a", **kwargs)
    assert store.rows() == []


def test_store_is_safe_across_threads(store):
    def rate(n):
        store.add(question=f"问题{n}", answer="回答", rating="up" if n % 2 else "down")

    threads = [threading.Thread(target=rate, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(store.rows()) == 20
    assert store.counts() == {"up": 10, "down": 10}


def test_export_csv_writes_header_and_rows(store):
    store.add(question="电工证什么时候退出目录？", answer="属于第二批，\n拟于2020年12月31日前退出。", rating="up",
              citations=CITATIONS, comment="有用")
    store.add(question="=HYPERLINK(\"http://x\")", answer="-1+1", rating="down", comment="@SUM(A1)")
    out = io.StringIO()
    assert export_csv(store.db_path, out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0].keys()) == CSV_COLUMNS
    first, second = rows
    assert first["answer"] == "属于第二批，\n拟于2020年12月31日前退出。"  # newlines survive quoting
    assert first["citation_labels"] == "附件第1项；第二条"
    assert '"label": "附件第1项"' in first["citations"]
    assert (first["rating"], first["comment"]) == ("up", "有用")
    # Cells a spreadsheet would run as formulas are prefixed with a quote.
    assert second["question"].startswith("'=")
    assert second["answer"] == "'-1+1"
    assert second["comment"] == "'@SUM(A1)"


def test_export_without_a_database_writes_only_the_header(tmp_path):
    out = io.StringIO()
    assert export_csv(tmp_path / "none.sqlite3", out) == 0
    assert out.getvalue().strip() == ",".join(CSV_COLUMNS)
    assert not (tmp_path / "none.sqlite3").exists()


def test_cli_exports_feedback(tmp_path, monkeypatch, capsys):
    """`assistant feedback export -o FILE` (the lead's CLI) writes what the chat stored."""
    from assistant.cli import main

    db = tmp_path / "fb.sqlite3"
    FeedbackStore(db).add(question="第一批有哪些？", answer="……", rating="down", comment="太长")
    monkeypatch.setenv("ASSISTANT_FEEDBACK_DB", str(db))
    out = tmp_path / "feedback.csv"
    assert main(["feedback", "export", "-o", str(out)]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert [(r["question"], r["rating"], r["comment"]) for r in rows] == [("第一批有哪些？", "down", "太长")]
    assert "wrote 1 feedback rows" in capsys.readouterr().err

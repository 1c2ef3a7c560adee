"""The evaluation harness: scoring rules, and `assistant eval` printing the table for one or both modes."""
import argparse
import json

from assistant import Config
from assistant.evaluate import EvalCase, check_answer, main, recall
from fake_llm import FakeLLM, Reply


def case(**kw):
    base = {"id": "t1", "category": "batch", "question": "电工是第几批？", "answerable": True}
    return EvalCase.model_validate({**base, **kw})


def test_an_answer_needs_every_fact_one_of_each_alternative_and_no_forbidden_string():
    c = case(must_contain=["第二批", ["12月31日", "12 月 31 日"]], must_not_contain=["电工属于第一批"],
             citations=["附件第1项"])
    assert check_answer(c, True, "电工属于第二批，12月31日前退出。", ["附件第1项"])[:2] == (True, True)
    ok, cited, missing = check_answer(c, True, "电工属于第二批。", ["第二条"])
    assert (ok, cited) == (False, False) and "12月31日|12 月 31 日" in missing and "cite:附件第1项" in missing
    assert check_answer(c, True, "电工属于第一批？不，第二批，12月31日", ["附件第1项"])[0] is False


def test_a_case_to_decline_passes_only_when_declined():
    c = case(answerable=False)
    assert check_answer(c, False, "无法回答", [])[0] is True
    assert check_answer(c, True, "电工属于第二批", ["附件第1项"])[0] is False


def test_recall_counts_required_labels_found():
    assert recall(["附件第1项", "第二条"], ["附件第1项", "第四条", "开头"]) == 0.5
    assert recall([], ["附件第1项"]) is None


def write_set(path, cases):
    path.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases), encoding="utf-8")


CASES = [
    {"id": "a", "category": "batch", "question": "美容师是第几批？", "answerable": True,
     "must_contain": ["第一批"], "citations": ["附件第57项"]},
    {"id": "b", "category": "refusal", "question": "今天天气怎么样？", "answerable": False},
]


def args_for(path, **kw):
    return argparse.Namespace(eval_set=path, no_baselines=False, markdown=None, failures=True, **kw)


def test_eval_prints_the_table_with_both_baselines(tmp_path, index_dir, capsys):
    write_set(tmp_path / "set.jsonl", CASES)
    assert main(Config(index_dir=index_dir), args_for(tmp_path / "set.jsonl")) == 0
    out = capsys.readouterr().out
    assert "mode offline" in out and "| **ALL** | 2 | 100.0% | 100.0% |" in out
    assert "baseline: chunks+Chroma" in out and "baseline: BM25 chunks" in out
    assert "refusal recall: 100.0%" in out


def test_eval_with_an_llm_reports_both_modes(tmp_path, index_dir, capsys):
    write_set(tmp_path / "set.jsonl", CASES)
    with FakeLLM() as fake:
        fake.default = Reply.text("美容师属于第一批，拟于2020年9月30日前退出目录[附件第57项][第二条]。")
        # a confident offline answer is sent to be rephrased (by default it is not sent at all)
        config = Config(index_dir=index_dir, llm_enabled=True, llm_base_url=fake.base_url, llm_model="fake",
                        llm_timeout=5, llm_rephrase_confident=True)
        assert main(config, args_for(tmp_path / "set.jsonl")) == 0
    out = capsys.readouterr().out
    assert "mode offline" in out and "mode llm" in out
    assert "generated answers kept: 1/2" in out

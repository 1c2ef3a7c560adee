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

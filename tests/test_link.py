"""Entity linking reads names the way users write them and never confuses near neighbours."""
import pytest

from assistant.link import NO_BATCH, EntityLinker, chinese_number
from assistant.normalize import normalize
from assistant.records import BATCH_1, BATCH_LICENSED

from assistant.config import REPO_ROOT


@pytest.fixture(scope="module")
def link(corpus):
    linker = EntityLinker(corpus, REPO_ROOT / "corpus" / "aliases.csv")
    return lambda q: linker.run(normalize(q))


@pytest.mark.parametrize("question, occupation", [
    ("金属材料热处理工是第几批", "金属材料热处理工"),
    ("金属热处理工是第几批", "金属热处理工"),
    ("森林消防员归谁管", "森林消防员"),
    ("消防员归谁管", "消防员"),
    ("空姐证还有用吗", "民航乘务员"),
    ("理发师的证", "美发师"),
    ("搞沼气的证啥时候没了？", "沼气工"),
    ("驾校教练证", "机动车驾驶教练员"),
    ("電工證", "电工"),
    ("电 工 证", "电工"),
    ("粮油仓储管理员", "(粮油) 仓储管理员"),
])
def test_occupations_by_name_alias_and_form(link, question, occupation):
    assert link(question).occupations == (occupation,)


def test_an_alias_for_several_occupations_names_them_all(link):
    assert set(link("厨师证什么时候取消").occupations) == {"中式烹调师", "西式烹调师"}


def test_typos_are_read_by_sound_and_marked_fuzzy(link):
    m = link("电公证还能用吗")
    assert m.occupations == ("电工",) and m.fuzzy == (("电公", "电工"),)


def test_structure_lookups(link):
    assert link("附件第21项有哪些").items == (21,)
    assert link("序号六十六").items == (66,)
    assert link("第一批有哪些").batches == (BATCH_1,)
    assert link("哪些要调整为准入类").batches == (BATCH_LICENSED,)
    assert link("第三批什么时候").batches == (NO_BATCH,)
    assert link("第二条说了什么").clauses == (2,)
    assert link("住建部负责哪些").departments == ("住房和城乡建设部",)


def test_occupations_absent_from_the_annex_are_reported_not_mapped(link):
    for question, name in [("焊工证什么时候取消", "焊工"), ("心理咨询师还有吗", "心理咨询师"), ("教师资格证还有效吗", "教师")]:
        m = link(question)
        assert m.occupations == () and name in m.unknown_names, question


def test_chinese_numbers():
    assert [chinese_number(x) for x in ("七十六", "十", "二十一", "66", "一百")] == [76, 10, 21, 66, 100]


def test_job_descriptions_are_linked_through_cue_words_and_marked(link):
    m = link("我在技工室做烤瓷牙冠，这个证是第几批")
    assert m.occupations == ("口腔修复体制作工",) and m.fuzzy
    m = link("在4S店修小轿车的证几号之前退出")
    assert m.occupations == ("汽车维修工",)


def test_descriptions_of_work_outside_the_annex_stay_unlinked(link):
    for question in ("我是开叉车的，证还有用吗", "我在养老院做护理", "送快递的要考证吗"):
        assert link(question).occupations == (), question


def test_one_word_and_its_parts_are_not_two_pieces_of_a_name(link):
    assert link("我在人力资源和社会保障局办事").occupations == ()

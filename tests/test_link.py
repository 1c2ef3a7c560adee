"""Entity linking reads names the way users write them and never confuses near neighbours."""
import pytest

from assistant.link import NO_BATCH, EntityLinker, chinese_number
from assistant.normalize import normalize
from assistant.records import BATCH_1, BATCH_LICENSED

from assistant.config import REPO_ROOT


@pytest.fixture(scope="module")
def link(corpus, profile):
    linker = EntityLinker(corpus, REPO_ROOT / "corpus" / "aliases.csv", profile)
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


@pytest.mark.parametrize("question, occupation", [
    ("我采访的一位老钳工担心他的证书作废", "钳工"),          # an adjective before the name
    ("我老伴干了一辈子印花工，证还有用吗", "印花工"),    # a numeral phrase
    ("我刚考完中式烹调师的理论", "中式烹调师"),          # pronoun, adverb and verb
    ("俺钳工高级证要不要换", "钳工"),                    # a level after the name
    ("劳动关系协调员三级证书算什么", "劳动关系协调员"),
    ("我准备考茶艺师，还来得及吗", "茶艺师"),             # a verb of learning, even inside a jieba noun
    ("我想学电工，这个证以后还有吗", "电工"),
    ("网传中式烹调师退出后只能花钱买等级证", "中式烹调师"),  # a word of hearsay jieba tags as a noun
    ("我爸退休前是八级钳工", "钳工"),                      # an old eight-grade level before the name
    ("俺家老头子 那个 汽修 汽车维修工 九几年考的", "汽车维修工"),  # a first try at the name, then the name
    ("我那个 眼睛 眼镜验光员 的证", "眼镜验光员"),
    ("80号文里防水工啥时候退出", "防水工"),                # a localizer jieba glued to the word before
    ("做模具的 伊问模具工是第一批伐", "模具工"),            # a verb jieba glued to the word before
])
def test_words_of_the_sentence_glued_to_a_name_are_not_part_of_it(link, question, occupation):
    assert link(question).occupations == (occupation,)


@pytest.mark.parametrize("question, name", [("医疗美容师证取消了吗", "医疗美容师"), ("模具钳工哪批退出", "模具钳工")])
def test_a_noun_before_a_name_makes_another_job(link, question, name):
    m = link(question)
    assert m.occupations == () and name in m.unknown_names


def test_a_role_word_is_the_subject_only_when_no_other_job_is_named(link):
    assert link("我是HR，想问中央空调系统运行操作员哪批退出").occupations == ("中央空调系统运行操作员",)
    assert link("我们HR说保安员证要换").occupations == ("保安员",)
    assert link("HR证哪批退出").occupations == ("企业人力资源管理师",)
    assert link("HR证和保安员证哪个先退").occupations == ("企业人力资源管理师", "保安员")


@pytest.mark.parametrize("question, occupation", [
    ("dian gong zheng hai neng yong bu", "电工"),
    ("gang jin gong 几月份之前退", "钢筋工"),
    ("meifashi zheng还有用吗", "美发师"),
])
def test_a_name_typed_in_pinyin_is_read_as_a_guess(link, question, occupation):
    m = link(question)
    assert m.occupations == (occupation,) and [s.kind.value for s in m.subjects] == ["typo"]


def test_english_words_are_not_read_as_pinyin_names(link):
    assert link("I am a long time worker in china, is my card valid").occupations == ()


@pytest.mark.parametrize("question, sectors", [
    ("第一批里跟制冷有关的工种有哪些", ("制冷",)),
    ("我们纺织厂那些工种都在名单里吗", ("纺织",)),
    ("制冷工哪批退出", ()),                 # inside a full annex name: that name, not a sector
    ("跟公共安全有关的职业有哪些", ()),      # a word of the notice body names no sector
    ("生产制造类的有哪些", ()),              # words of too many names
    ("工地上的工种哪些退出了", ("工地",)),     # a reviewed sector word the names lack
    ("食品厂相关的证", ("食品厂",)),          # the longer of two words, one inside the other
])
def test_sector_words_come_from_the_sector_table(link, question, sectors):
    assert link(question).sectors == sectors


def test_a_single_character_before_a_name_makes_another_job(link):
    m = link("纺织挡车工算第几批？")
    assert m.occupations == () and "纺织挡车工" in m.unknown_names


@pytest.mark.parametrize("question, occupation", [
    ("Which qualification group does the relay protection job belong to?", "继电保护员"),
    ("Motor vehicle inspection worker - who runs that one?", "机动车检测工"),
    ("When is the eyeglass refraction technician qualification dropped?", "眼镜验光员"),
])
def test_an_english_name_said_in_other_words_is_read_as_a_guess(link, question, occupation):
    m = link(question)
    assert m.occupations == (occupation,) and all(s.kind.value == "cue" for s in m.subjects)


def test_english_words_that_say_only_that_someone_works_name_no_job(link):
    assert link("I am a worker in china, is my certificate valid?").occupations == ()


@pytest.mark.parametrize("typed, mandarin", [
    ("通知係發畀邊啲單位嘅？", "通知是发给哪些单位的？"),
    ("我喺東莞做電工，張電工證仲有冇用㗎？", "我在东莞做电工，张电工证还有没有用？"),
    ("資訊通信網路機務員歸哪個部門", "信息通信网络机务员归哪个部门"),
    ("系统里的劳动仲裁记录", "系统里的劳动仲裁记录"),  # no Cantonese particle: Mandarin words untouched
    ("咁設備點檢員呢？點樣查？", "这样设备点检员呢？怎么查？"),  # 点检 is a word of its own
])
def test_written_cantonese_and_taiwan_words_become_mandarin(typed, mandarin):
    assert normalize(typed) == mandarin


def test_a_verb_of_the_annex_names_is_no_sector(link):
    assert link("第一批退出的里面有哪些是烹饪类的？我们要提前准备").sectors == ()


def test_regional_words_do_not_change_the_notices_own_words():
    # 批次, 文件, 什么, 程序 are the same words in Taiwan; a phrase table that maps them would change the question
    assert normalize("为什么这个文件的批次和法定程序是这样") == "为什么这个文件的批次和法定程序是这样"
    assert normalize("為什麼這個文件的批次") == "为什么这个文件的批次"


def test_a_sector_row_the_annex_lacks_is_refused_naming_the_line(corpus, tmp_path):
    from assistant.link import SectorTableError, read_sectors

    path = tmp_path / "sectors.csv"
    path.write_text("sector,item,occupation,source\n食品,47,\n食品,48,木工,reviewed\n", encoding="utf-8")
    with pytest.raises(SectorTableError, match="line 3"):
        read_sectors(path, corpus)


@pytest.mark.parametrize("question, items, batches", [
    ("Can you list all the jobs under item 72 please", (72,), ()),
    ("What is in Item No. 5?", (5,), ()),
    ("List all the batch-1 jobs please", (), ("1",)),
    ("Which jobs are in batch two?", (), ("2",)),
])
def test_english_item_and_batch_references(link, question, items, batches):
    m = link(question)
    assert m.items == items and m.batches == batches


def test_a_role_word_is_no_subject_when_a_batch_is_asked(link):
    assert link("List all the batch-1 jobs please, I need them for our HR files").occupations == ()
    assert link("我是HR，这个证哪批退出").occupations == ("企业人力资源管理师",)  # nothing else named: the role


@pytest.mark.parametrize("heard, meant", [
    ("钳工啥时候推出目录啊", "钳工啥时候退出目录啊"),
    ("第一披推出的都有哪些工种", "第一批退出的都有哪些工种"),
    ("电工正书还有笑吗", "电工证书还有效吗"),
    ("俺那个保育员正 是不是要重新考", "俺那个保育员证，是不是要重新考"),
    ("电工正式退出了吗", "电工正式退出了吗"),      # 正 beginning a word stays
    ("他是工程师正在考试", "他是工程师正在考试"),
])
def test_what_dictation_mishears_of_the_key_words_is_read_as_meant(heard, meant):
    assert normalize(heard) == meant


def test_a_dictated_name_with_a_misheard_certificate_word_is_linked(link):
    assert link("俺那个保育员正 是不是要重新考").occupations == ("保育员",)


def test_a_two_character_typo_is_not_read_inside_another_word(link):
    """中出现 is 中 + 出现 (appear), not a typo of 中厨; 电公 before 是 or 证 is still 电工."""
    assert link("“准入类”这个词在通知正文中出现在哪几条？").occupations == ()
    assert link("电公是第二批吗").occupations == ("电工",)
    assert link("电公证").occupations == ("电工",)


def test_people_and_a_bare_level_are_no_jobs(link):
    m = link("我父亲是老钟表厂的退休职工，当年考了钟表及计时仪器制造工的高级证")
    assert m.occupations == ("钟表及计时仪器制造工",) and not m.unknown_names
    assert link("我们公司很多员工持有汽车装调工职业资格证书").unknown_names == ()


def test_a_tail_of_many_annex_names_is_no_typo_of_one(link):
    """牙科修复体制造工人: 制造工 ends many annex names; it is not a mistyped 铸造工."""
    assert "铸造工" not in link("附件中的哪一项包含牙科修复体制造工人？").occupations

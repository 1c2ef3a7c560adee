"""The tokenizer's stored word table (assistant/words.py): the same segmentation as jieba's in-memory dictionary."""
import json

import jieba

from assistant.config import REPO_ROOT
from assistant.retrieve import HybridRetriever, token_cache_path, tokenize
from assistant.words import StoredFrequencies, _store, dictionary_key

NAMES = ["制冷空调系统安装维修工", "孤残儿童护理员", "信息通信网络机务员"]
QUESTIONS = ["孤残儿童护理员归哪个部门管？", "我是搞制冷空调系统安装维修工的，证还有效吗", "信息通信网络机务员第几批退出"]


def test_the_stored_table_cuts_text_exactly_as_jieba_in_memory(tmp_path):
    memory = jieba.Tokenizer()
    memory.check_initialized()
    for name in NAMES:
        memory.add_word(name, freq=2000)
    path = tmp_path / "words.sqlite"
    _store(path, memory)

    stored = jieba.Tokenizer()
    table = StoredFrequencies(path)
    stored.FREQ, stored.total, stored.initialized = table, table.total, True
    notice = (REPO_ROOT / "corpus" / "notice-2020-80.txt").read_text(encoding="utf-8")
    assert stored.lcut(notice) == memory.lcut(notice)
    assert stored.lcut_for_search(notice) == memory.lcut_for_search(notice)
    for q in QUESTIONS:
        assert stored.lcut(q) == memory.lcut(q)
    assert "孤残儿童护理员" in stored.lcut(QUESTIONS[0])  # the added names are whole words
    # a word added later is kept apart from the looked-up ones
    stored.add_word("宇宙飞船装配工", freq=2000)
    assert "宇宙飞船装配工" in stored.lcut("宇宙飞船装配工第几批")


def test_the_key_names_what_the_table_was_made_from():
    assert dictionary_key(NAMES) == dictionary_key(list(reversed(NAMES)))
    assert dictionary_key(NAMES) != dictionary_key(NAMES[:2])


def test_bm25_tokens_are_read_back_from_the_cache(assistant, tmp_path):
    units = assistant.retriever.units
    path = token_cache_path(tmp_path, units, "k")
    first = HybridRetriever(units=units, index=assistant.retriever.index, token_cache=path)
    assert first.unit_tokens() == [tokenize(u.text) for u in units] and path.exists()
    marked = [["written", "by", "the", "test"]] * len(units)
    path.write_text(json.dumps(marked), encoding="utf-8")  # what a later process reads
    second = HybridRetriever(units=units, index=assistant.retriever.index, token_cache=path)
    assert second.unit_tokens() == marked
    path.write_text('[["one", "list", "for", "many", "units"]]', encoding="utf-8")  # the wrong shape: made again
    third = HybridRetriever(units=units, index=assistant.retriever.index, token_cache=path)
    assert third.unit_tokens() == [tokenize(u.text) for u in units]
    assert token_cache_path(tmp_path, units, "other key") != path  # another word table, another cache

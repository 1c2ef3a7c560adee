"""The parsed corpus agrees with the notice's own numbers and keeps the source's own errors visible."""
import hashlib
from collections import Counter

import pytest

from assistant.parse import NoticeParser, ParseError, parse_source, render_corpus_files
from assistant.records import BATCH_1, BATCH_2, BATCH_LICENSED

from assistant.config import REPO_ROOT

SOURCE = REPO_ROOT / "corpus" / "notice-2020-80.txt"
SHARED_SOURCE = REPO_ROOT.parent / "shared" / "source" / "notice-2020-80.txt"


def test_corpus_copy_is_byte_identical_to_shared_source():
    if not SHARED_SOURCE.exists():
        pytest.skip("../shared is not beside the repo")
    assert SOURCE.read_bytes() == SHARED_SOURCE.read_bytes()


def test_parsing_the_source_again_reproduces_the_corpus_files_exactly():
    for name, text in render_corpus_files(parse_source(SOURCE)).items():
        assert (REPO_ROOT / "corpus" / name).read_text(encoding="utf-8") == text, name


def test_header_facts(corpus):
    h = corpus.header
    assert h.doc_number == "人社厅发〔2020〕80号"
    assert h.title == "人力资源社会保障部办公厅关于做好水平评价类技能人员职业资格退出目录有关工作的通知"
    assert h.issuer == "人力资源社会保障部办公厅"
    assert h.issue_date == "2020年7月21日"
    assert h.contact == "职业能力建设司"
    assert h.disclosure == "主动公开"
    assert h.recipients.startswith("各省、自治区、直辖市及新疆生产建设兵团") and h.recipients.endswith("兵员和文职人员局")


def test_opening_and_six_clauses_verbatim(corpus):
    assert [c.number for c in corpus.clauses] == [0, 1, 2, 3, 4, 5, 6]
    assert corpus.clause(0).text.startswith("2019年12月，国务院常务会议决定")
    for number, numeral in enumerate("一二三四五六", 1):
        assert corpus.clause(number).text.startswith(f"{numeral}、")
    assert "退出目录前已发放的职业资格证书继续有效" in corpus.clause(4).text


def test_words_broken_across_page_breaks_are_joined(corpus):
    assert "退出国家职业资格目录有关工作通知如下：" in corpus.clause(0).text
    assert "可以根据考生意愿" in corpus.clause(3).text


def test_scan_artifacts_are_gone(corpus):
    everything = " ".join(c.text for c in corpus.clauses) + " ".join(r.quote() for r in corpus.annex_rows)
    for artifact in ("扫描全能王", "— 1 —", "序号", "实施部门(单位)"):
        assert artifact not in everything


def test_annex_counts_match_the_notice(corpus):
    rows = corpus.annex_rows
    assert corpus.item_numbers() == list(range(1, 77))
    assert len({r.item for r in rows if r.batch == BATCH_1}) == 14
    assert sum(r.batch == BATCH_1 for r in rows) == 29
    assert sum(r.batch == BATCH_2 for r in rows) == 156
    assert sum(r.batch == BATCH_LICENSED for r in rows) == 7
    assert len({r.item for r in rows if r.batch == BATCH_2}) == 66


def test_blank_cells_inherit_within_an_item_and_batches_are_per_row(corpus):
    item8 = {r.occupation: r for r in corpus.rows_of_item(8)}
    assert item8["锅炉操作工"].batch == BATCH_1 and item8["锅炉操作工"].departments == ("人力资源和社会保障部",)
    assert item8["燃气轮机值班员"].batch == BATCH_2
    item1 = {r.occupation: r for r in corpus.rows_of_item(1)}
    assert item1["电工"].batch == BATCH_2  # blank batch cell, inherited from 设备点检员
    assert item1["电工"].departments == ("应急管理部", "人力资源和社会保障部")
    for item in (8, 21, 38, 52, 58, 66):
        assert len({r.batch for r in corpus.rows_of_item(item)}) > 1, item


def test_source_errors_stay_visible(corpus):
    names = [r.occupation for r in corpus.rows_of_item(25)]
    assert names.count("重冶金法冶炼工") == 2
    assert "14 项职业资格" in corpus.clause(2).text and "66 项职业资格" in corpus.clause(2).text


def test_text_without_an_annex_is_a_parse_error():
    with pytest.raises(ParseError):
        NoticeParser().run("人社厅发〔2020〕80号\n一、没有附件的文本。")


def test_row_counts_by_item_are_stable(corpus):
    counts = Counter(r.item for r in corpus.annex_rows)
    assert counts[1] == 5 and counts[72] == 5 and counts[76] == 3


# ---- integrity: corpus/manifest.json ties every corpus file to the source --------------------------------

import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from assistant.parse import (  # noqa: E402
    CURATED_FILES, DERIVED_FILES, MANIFEST_FILE, CorpusIntegrityError, load_corpus, verify_corpus,
)


@pytest.fixture()
def corpus_copy(tmp_path):
    """A copy of corpus/ to damage; the real one is never touched."""
    copy = tmp_path / "corpus"
    shutil.copytree(REPO_ROOT / "corpus", copy)
    return copy


def _edit_electrician_batch(directory):
    path = directory / "annex.csv"
    data = path.read_bytes()
    line = "2,1,机械设备修理人员,电工,应急管理部、人力资源和社会保障部,2\n".encode()
    assert data.count(line) == 1
    path.write_bytes(data.replace(line, line[:-2] + b"1\n"))  # one byte: batch 2 → 1


def test_manifest_hashes_the_source_and_every_corpus_file_present():
    manifest = json.loads((REPO_ROOT / "corpus" / MANIFEST_FILE).read_text(encoding="utf-8"))
    assert manifest["source_sha256"] == hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    present = [n for n in DERIVED_FILES + CURATED_FILES if (REPO_ROOT / "corpus" / n).exists()]
    bank = sorted(p.relative_to(REPO_ROOT / "corpus").as_posix() for p in (REPO_ROOT / "corpus").glob("bank/*.jsonl"))
    assert list(manifest["files"]) == present + bank and {"annex.csv", "aliases.csv", "cues.csv"} <= set(present)
    assert len(bank) >= 12  # the question bank the frame model is trained from is hashed too
    for name, sha in manifest["files"].items():
        assert hashlib.sha256((REPO_ROOT / "corpus" / name).read_bytes()).hexdigest() == sha, name


def test_one_byte_edit_of_the_annex_is_named_by_file_and_row(corpus_copy):
    _edit_electrician_batch(corpus_copy)
    with pytest.raises(CorpusIntegrityError) as err:
        load_corpus(corpus_copy)
    message = str(err.value)
    assert "annex.csv row 2 (电工): batch '1' differs from the source ('2')" in message
    assert "\n" not in message and "assistant parse" in message


def test_an_edited_table_or_a_missing_manifest_is_refused(corpus_copy):
    verify_corpus(corpus_copy)  # the untouched copy passes
    with (corpus_copy / "aliases.csv").open("a", encoding="utf-8") as fh:
        fh.write("电工证,电工\n")
    with pytest.raises(CorpusIntegrityError, match=r"aliases\.csv was changed after `assistant parse`"):
        load_corpus(corpus_copy)
    (corpus_copy / MANIFEST_FILE).unlink()
    with pytest.raises(CorpusIntegrityError, match=r"manifest\.json is missing"):
        load_corpus(corpus_copy)


def test_edited_header_and_bytes_that_are_not_utf8_are_one_line_errors(corpus_copy):
    header = corpus_copy / "header.json"
    header.write_text(header.read_text(encoding="utf-8").replace("2020年7月21日", "2020年7月12日"), encoding="utf-8")
    with pytest.raises(CorpusIntegrityError, match=r"header\.json: line \d+ .*2020年7月12日"):
        load_corpus(corpus_copy)
    shutil.copy(REPO_ROOT / "corpus" / "header.json", header)
    (corpus_copy / "cues.csv").write_bytes((corpus_copy / "cues.csv").read_bytes() + b"\xff\xfe\n")
    with pytest.raises(CorpusIntegrityError, match=r"cues\.csv"):
        load_corpus(corpus_copy)


def test_parse_writes_a_manifest_that_then_verifies(corpus_copy):
    (corpus_copy / MANIFEST_FILE).unlink()
    (corpus_copy / "annex.csv").unlink()
    from assistant.parse import write_corpus

    write_corpus(parse_source(corpus_copy / "notice-2020-80.txt"), corpus_copy)
    assert load_corpus(corpus_copy).manifest_sha256 == hashlib.sha256(
        (corpus_copy / MANIFEST_FILE).read_bytes()).hexdigest()


def test_cli_and_server_refuse_a_damaged_corpus_with_one_line(corpus_copy, tmp_path):
    _edit_electrician_batch(corpus_copy)
    env = {**os.environ, "ASSISTANT_CORPUS_DIR": str(corpus_copy), "ASSISTANT_INDEX_DIR": str(tmp_path / "index"),
           "ASSISTANT_PORT": "9"}  # serve must fail before it binds any port
    for args in (["parse", "--check"], ["ask", "电工是第几批？"], ["index"], ["serve"]):
        result = subprocess.run([sys.executable, "-m", "assistant.cli", *args], capture_output=True, text=True,
                                env=env, cwd=tmp_path, timeout=300)
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr.strip().splitlines() == [
            "assistant: error: corpus/annex.csv row 2 (电工): batch '1' differs from the source ('2'); "
            "run `assistant parse` to rewrite corpus/ from the source"], args
        assert "第一批" not in result.stdout
    assert not (tmp_path / "index").exists() or not any((tmp_path / "index").rglob("chroma.sqlite3"))

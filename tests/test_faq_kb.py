"""FAQ knowledge bases: the built-in one, every upload format, every validation error, replace/extend.

No model needed.

    pytest tests/test_faq_kb.py -q
"""

from __future__ import annotations

import copy
import json

import pytest

from assistant.core.errors import InputError
from assistant.core.language import chinese_or_english
from assistant.faq.knowledge_base import (
    KnowledgeBase,
    UploadLimits,
    load_builtin,
    load_upload,
    parse_file,
)


def write(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def pairs(entries) -> list[tuple[str, str, str]]:
    return [(t.lang, t.question, t.answer) for e in entries for t in e.texts]


def test_builtin_faq_is_bilingual_with_unique_ids():
    kb = load_builtin()
    assert len(kb) == 61
    assert len({e.id for e in kb.entries}) == 61
    for entry in kb.entries:
        assert [t.lang for t in entry.texts] == ["en", "zh"]
        assert all(t.question and t.answer for t in entry.texts)
    overfit = next(e for e in kb.entries if e.id == "faq-025")
    assert "overfit" in overfit.in_language("en").question
    assert "过拟合" in overfit.in_language("zh").question
    assert overfit.in_language("fr").lang == "en"  # a missing language falls back to the first one


def test_chinese_or_english():
    assert chinese_or_english("How do I stop overfitting?") == "en"
    assert chinese_or_english("微调过程中出现过拟合怎么办？") == "zh"
    assert chinese_or_english("LoRA 的秩怎么选？") == "zh"
    assert chinese_or_english("What does 微调 mean in English?") == "en"


def test_content_hash_follows_the_content():
    kb = load_builtin()
    same = KnowledgeBase("another name", tuple(copy.deepcopy(list(kb.entries))))
    assert same.content_hash == kb.content_hash
    changed = KnowledgeBase(kb.name, kb.entries[:-1])
    assert changed.content_hash != kb.content_hash


@pytest.mark.parametrize("header", ["question,answer", "q,a", "Question,Answer", "QUESTION , Answer", "问题,答案"])
def test_csv_column_aliases(tmp_path, header):
    path = write(tmp_path, "faq.csv", f"{header}\nWhat is X?,X is a letter.\n什么是 Y？,Y 是一个字母。\n")
    assert pairs(parse_file(path)) == [("en", "What is X?", "X is a letter."), ("zh", "什么是 Y？", "Y 是一个字母。")]


def test_csv_quoting_ids_bom_and_tsv(tmp_path):
    csv_text = '\ufeffid,question,answer,topic\nk1,"Why, exactly?","Line one,\nline two"\n\nk2,Second?,Yes.,misc\n'
    entries = parse_file(write(tmp_path, "faq.csv", csv_text))
    assert [e.id for e in entries] == ["k1", "k2"]
    assert entries[0].texts[0].answer == "Line one,\nline two"
    assert entries[1].topic == "misc"
    tsv = parse_file(write(tmp_path, "faq.tsv", "Question\tAnswer\nA, B or C?\tB.\n"))
    assert pairs(tsv) == [("en", "A, B or C?", "B.")]
    assert [e.id for e in tsv] == ["upload-001"]


def test_jsonl_plain_and_builtin_format(tmp_path):
    plain = write(tmp_path, "faq.jsonl", '{"Q": "What is X?", "A": "X."}\n\n{"q": "What is Y?", "a": "Y."}\n')
    assert pairs(parse_file(plain)) == [("en", "What is X?", "X."), ("en", "What is Y?", "Y.")]
    rows = [{"id": "b1", "question_en": "Hi?", "answer_en": "Hello.", "question_zh": "你好？", "answer_zh": "你好。"}]
    bilingual = parse_file(write(tmp_path, "mine.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows)))
    assert bilingual[0].id == "b1"
    assert pairs(bilingual) == [("en", "Hi?", "Hello."), ("zh", "你好？", "你好。")]


@pytest.mark.parametrize(("name", "text", "expected"), [
    pytest.param("faq.md", "# My FAQ\nSome introduction.\n\n"
                 "Q: What is LoRA?\nA: Low-rank adaptation.\nIt trains small matrices.\n\n"
                 "**Q:** Is it fast?\n**A:** Yes.\n\n"
                 "问：什么是量化？\n答：用更少的比特存储权重。\n",
                 [("en", "What is LoRA?", "Low-rank adaptation.\nIt trains small matrices."),
                  ("en", "Is it fast?", "Yes."),
                  ("zh", "什么是量化？", "用更少的比特存储权重。")], id="q-and-a-lines"),
    pytest.param("faq.markdown", "# Team FAQ\n\n## Basics\n\n### What is a token?\nA piece of text.\n\n"
                 "Usually a word part.\n\n### Where is the model?\nIn the cache folder.\n\n"
                 "## How do I restart? ##\nRun `python app.py` again.\n",
                 [("en", "What is a token?", "A piece of text.\n\nUsually a word part."),
                  ("en", "Where is the model?", "In the cache folder."),
                  ("en", "How do I restart?", "Run `python app.py` again.")], id="headings"),
])
def test_markdown_faq(tmp_path, name, text, expected):
    assert pairs(parse_file(write(tmp_path, name, text))) == expected


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("faq.csv", "title,body\nx,y\n", ["'faq.csv' has columns ['title', 'body']", "question", "answer"]),
        ("faq.jsonl", '{"text": "x", "label": "y"}\n', ["columns ['text', 'label']", "expected a question column"]),
        ("faq.csv", "question,answer\nWhat?,Yes.\n,No question here.\n", ["row 2 (line 3)", "question", "empty"]),
        ("faq.csv", "question,answer\nWhat?,Yes.\nWhy?,\n", ["row 2 (line 3)", "answer", "empty"]),
        ("faq.jsonl", '{"question": "What?", "answer": "Yes."}\n{"question": "Why?", "answer": " "}\n',
         ["line 2", "answer", "empty"]),
        ("faq.csv", "question,answer\nWhat is X?,One.\nOther?,Two.\nwhat is  x,Three.\n",
         ["row 1 (line 2) and row 3 (line 4) ask the same question"]),
        ("faq.csv", "id,question,answer\nk1,What?,One.\nk1,Why?,Two.\n", ["row 1 (line 2) and row 2 (line 3)", "'k1'"]),
        ("faq.csv", "", ["'faq.csv' is empty"]),
        ("faq.md", "  \n\n", ["'faq.md' is empty"]),
        ("faq.csv", "question,answer\n", ["no questions and answers"]),
        ("faq.xlsx", "x", ["unsupported file type '.xlsx'", ".csv"]),
        ("faq.jsonl", '{"question": "What?", "answer": "Yes."}\n{"question": oops}\n', ["line 2 is not valid JSON"]),
        ("faq.jsonl", '["What?", "Yes."]\n', ["line 1 is a JSON list"]),
        ("faq.md", "Q: What?\nQ: Why?\nA: Because.\n", ["line 1: the question has no 'A:'"]),
        ("faq.md", "Q: What?\nA: This.\nA: That.\n", ["line 3: an 'A:' answer without a 'Q:'"]),
        ("faq.md", "Q: What?\n", ["line 1: the question has no 'A:'"]),
        ("faq.md", "# Title\nJust prose, no questions.\n", ["no FAQ entries", "Q:", "## question"]),
        ("faq.md", "## What?\nYes.\n## Why?\n\n", ["line 3", "answer", "empty"]),
    ],
)
def test_upload_errors_name_the_file_and_place(tmp_path, name, content, expected):
    with pytest.raises(InputError) as caught:
        parse_file(write(tmp_path, name, content))
    for fragment in expected:
        assert fragment in str(caught.value)


def test_not_utf8_names_the_byte_offset(tmp_path):
    data = b"question,answer\nWhat?,Yes.\n" + "Café?,Oui.\n".encode("latin-1")
    with pytest.raises(InputError) as caught:
        parse_file(write(tmp_path, "faq.csv", data))
    offset = data.index(b"\xe9")
    message = str(caught.value)
    assert f"byte 0xE9 at offset {offset} (line 3)" in message and "Save the file as UTF-8" in message


def test_size_and_entry_limits(tmp_path):
    path = write(tmp_path, "faq.csv", "question,answer\n" + "".join(f"Q{i}?,A{i}.\n" for i in range(50)))
    with pytest.raises(InputError, match=r"'faq.csv' is 0.0 MB; FAQ uploads are limited to 0.0 MB"):
        parse_file(path, UploadLimits(max_bytes=100))
    with pytest.raises(InputError, match="50 entries; at most 10"):
        parse_file(path, UploadLimits(max_entries=10))
    assert len(parse_file(path)) == 50  # default limits: 5 MB, 2000 entries
    assert UploadLimits().max_bytes == 5 * 1024 * 1024
    with pytest.raises(InputError):
        UploadLimits(max_bytes=0)


def test_replace_and_extend_build_new_knowledge_bases(tmp_path):
    base = load_builtin()
    before = base.content_hash
    path = write(tmp_path, "team.csv", "question,answer\nWhere is the coffee machine?,Second floor.\n")
    replaced = load_upload(path, base, "replace")
    extended = load_upload(path, base, "extend")
    assert (replaced.name, len(replaced)) == ("team.csv", 1)
    assert (extended.name, len(extended)) == ("built-in FAQ + team.csv", 62)
    assert extended.entries[-1].id == "upload-001"
    assert base.content_hash == before and len(base) == 61  # the built-in one is untouched
    with pytest.raises(InputError, match="mode must be one of replace, extend"):
        load_upload(path, base, "merge")


def test_extend_rejects_clashes_with_the_builtin_faq(tmp_path):
    base = load_builtin()
    clash_id = write(tmp_path, "ids.csv", "id,question,answer\nfaq-001,Something new?,Yes.\n")
    with pytest.raises(InputError, match=r"row 1 \(line 2\): id 'faq-001' is already used by the built-in FAQ"):
        load_upload(clash_id, base, "extend")
    assert len(load_upload(clash_id, base, "replace")) == 1  # no clash when replacing
    clash_question = write(tmp_path, "q.md", "Q: what is a large language model\nA: Mine.\n")
    with pytest.raises(InputError, match="line 1 repeats the question of built-in FAQ entry faq-001"):
        load_upload(clash_question, base, "extend")


def test_sessions_do_not_share_uploads(tmp_path):
    """Each session starts from its own copy of the default (as gr.State deep-copies it); an upload
    produces a new knowledge base for that session and leaves the default and other sessions alone."""
    default = load_builtin()
    session_a, session_b = copy.deepcopy(default), copy.deepcopy(default)
    path = write(tmp_path, "a.csv", "question,answer\nWhat is the secret word?,Pineapple.\n")
    session_a = load_upload(path, default, "extend")
    assert len(session_a) == 62 and len(session_b) == 61 and len(default) == 61
    assert all("Pineapple" not in t.answer for e in session_b.entries for t in e.texts)

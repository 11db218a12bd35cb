"""NER: entity types, prompt, the offset-exact parser, IOB2 conversions, seqeval metric, tiny model.

    pytest tests/test_ner.py -q
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.core.errors import InputError
from assistant.tasks import ner
from tests.conftest import REPO_ROOT

TYPES = ["PER", "ORG", "LOC", "MISC"]


def read_conll(path):
    sentences, tokens, tags = [], [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if tokens:
                sentences.append((tokens, tags))
            tokens, tags = [], []
            continue
        token, tag = line.split(" ")
        tokens.append(token)
        tags.append(tag)
    if tokens:
        sentences.append((tokens, tags))
    return sentences


SAMPLES = REPO_ROOT / "finetune" / "samples"
EN_ROWS = read_conll(SAMPLES / "ner_en.conll")
ZH_ROWS = [(row["tokens"], row["tags"]) for row in map(json.loads, (SAMPLES / "ner_zh.jsonl").open(encoding="utf-8"))]


def assert_offsets_hold(text, entities):
    for entity in entities:
        assert text[entity["start"]:entity["end"]] == entity["text"]
    spans = sorted((e["start"], e["end"]) for e in entities)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:])), "entities overlap"


def test_entity_types_default_and_parse():
    assert ner.parse_entity_types(None) == TYPES
    assert ner.parse_entity_types("  ") == TYPES
    assert ner.parse_entity_types("人名，地名, ORG") == ["人名", "地名", "ORG"]
    with pytest.raises(InputError, match="listed twice"):
        ner.parse_entity_types("PER, per")
    with pytest.raises(InputError, match="without ':'"):
        ner.parse_entity_types("PER: person")
    with pytest.raises(InputError, match="at most 20"):
        ner.parse_entity_types([f"T{i}" for i in range(21)])


def test_text_validation():
    with pytest.raises(InputError, match="empty"):
        ner.check_text(" \n")
    with pytest.raises(InputError, match="limit is 5,000"):
        ner.check_text("x" * 5_001)
    assert ner.check_text(" keep spaces ") == " keep spaces "  # offsets refer to the text as given


def test_prompt_lists_types_and_demonstrates_only_requested_types():
    messages = ner.build_messages("Bob lives in Rome.", ["PER", "LOC"])
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert "- PER (person)" in messages[0]["content"] and "- LOC (location)" in messages[0]["content"]
    assert messages[1]["content"] == f"Text: {ner.EXAMPLE_TEXT}"
    assert messages[2]["content"] == "PER: Angela Merkel\nPER: Tim Cook\nLOC: Paris"  # no ORG line: not asked for
    assert messages[3] == {"role": "user", "content": "Text: Bob lives in Rome."}
    custom = ner.build_messages("x", ["DRUG"])
    assert [m["role"] for m in custom] == ["system", "user"] and "- DRUG" in custom[0]["content"]


def test_parser_maps_entities_to_exact_offsets():
    text = "Paris Hilton flew from Paris to Berlin, then back to Paris."
    answer = "PER: Paris Hilton\nLOC: Paris\nLOC: Berlin\nLOC: Paris\nLOC: Paris"
    entities = ner.parse_output(answer, text, TYPES)
    assert [(e["type"], e["start"]) for e in entities] == [("PER", 0), ("LOC", 23), ("LOC", 32), ("LOC", 53)]
    assert_offsets_hold(text, entities)  # the third "LOC: Paris" has no free occurrence left: dropped


def test_parser_drops_hallucinated_entities_and_unknown_types():
    text = "Angela visited the Louvre."
    answer = "PER: Angela\nLOC: London\nFOOD: Louvre\nORG Louvre\nnone"
    assert ner.parse_output(answer, text, TYPES) == [{"text": "Angela", "type": "PER", "start": 0, "end": 6}]
    assert ner.parse_output("none", text, TYPES) == []
    assert ner.parse_output("", text, TYPES) == []


def test_parser_prefers_case_exact_whole_words_and_tolerates_formatting():
    text = "The parisian cafe in paris sits near Paris Street."
    entities = ner.parse_output("LOC: Paris\n- loc: PARIS", text, TYPES)
    assert [e["text"] for e in entities] == ["paris", "Paris"]  # case-exact first, whole word, then case-insensitive
    assert_offsets_hold(text, entities)
    spaced = ner.parse_output('1. ORG： "New  York Times"\nPerson: John, Mary', "John and Mary read the New York Times.",
                              TYPES)
    assert [(e["type"], e["text"]) for e in spaced] == [("PER", "John"), ("PER", "Mary"), ("ORG", "New York Times")]


def test_parser_handles_chinese_and_repeats():
    text = "李明在北京工作，周末常去北京大学和北京图书馆。"
    answer = "PER：李明\nLOC：北京\nORG：北京大学\nORG：北京图书馆\nLOC：上海"
    entities = ner.parse_output(answer, text, ["PER", "ORG", "LOC"])
    assert [(e["type"], e["text"], e["start"]) for e in entities] == [
        ("PER", "李明", 0), ("LOC", "北京", 3), ("ORG", "北京大学", 12), ("ORG", "北京图书馆", 17)]
    assert_offsets_hold(text, entities)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet="abcAB 北京,.", max_size=40),
       found=st.lists(st.tuples(st.sampled_from(TYPES), st.text(alphabet="abcAB 北京,.", min_size=1, max_size=6)),
                      max_size=8))
def test_offsets_invariant_holds_for_any_answer(text, found):
    assert_offsets_hold(text, ner.locate_entities(text, found))


def test_join_tokens_spaces_latin_and_not_chinese():
    assert ner.join_tokens(["EU", "rejects", "German", "call", "."]) == (
        "EU rejects German call .", [(0, 2), (3, 10), (11, 17), (18, 22), (23, 24)])
    assert ner.join_tokens(["李", "明", "在", "G", "P", "T", "。"])[0] == "李明在GPT。"  # character-level data
    assert ner.join_tokens(["北京", "大学", "hosts", "AI", "会议"])[0] == "北京大学 hosts AI 会议"


def test_tags_and_entities_round_trip_on_the_sample_data():
    assert EN_ROWS and ZH_ROWS
    for tokens, tags in EN_ROWS + ZH_ROWS:
        entities = ner.entities_from_tags(tokens, tags)
        text, _ = ner.join_tokens(tokens)
        assert_offsets_hold(text, entities)
        assert ner.tags_from_entities(tokens, entities) == tags


def test_entities_from_tags_reads_iob2_leniently_and_bmes():
    tokens = ["Kofi", "Annan", "visited", "New", "York"]
    assert ner.entities_from_tags(tokens, ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]) == [
        {"text": "Kofi Annan", "type": "PER", "start": 0, "end": 10},
        {"text": "New York", "type": "LOC", "start": 19, "end": 27}]
    lenient = ner.entities_from_tags(tokens, ["I-PER", "I-PER", "O", "I-LOC", "B-LOC"])
    assert [e["text"] for e in lenient] == ["Kofi Annan", "New", "York"]
    assert [e["text"] for e in ner.entities_from_tags(list("张伟去成都"), ["B-NAME", "E-NAME", "O", "B-LOC", "E-LOC"])] \
        == ["张伟", "成都"]
    with pytest.raises(InputError, match="5 tokens but 4 tags"):
        ner.entities_from_tags(tokens, ["O"] * 4)


def test_training_target_is_what_the_parser_reads_back():
    for tokens, tags in EN_ROWS + ZH_ROWS:
        messages, target = ner.training_example({"tokens": tokens, "tags": tags}, entity_types=TYPES)
        text, _ = ner.join_tokens(tokens)
        assert messages == ner.build_messages(text, TYPES)
        assert ner.parse_output(target, text, TYPES) == ner.entities_from_tags(tokens, tags)
    _, empty = ner.training_example({"tokens": ["Hello", "."], "tags": ["O", "O"]})
    assert empty == "none"
    with pytest.raises(InputError, match="entity types MISC that are not in"):
        ner.training_example({"tokens": ["German"], "tags": ["B-MISC"]}, entity_types="PER, LOC")


def test_seqeval_metric_on_hand_computed_values():
    references = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    predictions = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    scores = ner.evaluate(predictions, references)
    # gold: PER, LOC, ORG; predicted: PER, ORG (wrong type at LOC's place), ORG -> tp 2 of 3 each way
    assert scores["precision"] == pytest.approx(2 / 3) and scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3)
    assert scores["PER_f1"] == 1.0 and scores["LOC_recall"] == 0.0 and scores["LOC_support"] == 1.0
    assert scores["ORG_precision"] == pytest.approx(0.5) and scores["ORG_recall"] == 1.0
    with pytest.raises(InputError, match="Sentence 0"):
        ner.evaluate([["O"]], [["O", "O"]])


def test_prompt_too_long_for_the_context_is_an_input_error(tiny_loaded):
    small_context = dataclasses.replace(tiny_loaded, context_window=128)
    with pytest.raises(InputError, match="prompt needs .* tokens, but this model's 128-token context"):
        ner.extract_entities(small_context, "The quick brown fox.")


def test_tiny_model_extraction_keeps_the_invariants(tiny_loaded):
    text = "The quick brown fox jumps over the lazy dog in 北京."
    entities = ner.extract_entities(tiny_loaded, text, "PER, LOC")
    assert_offsets_hold(text, entities)
    assert {e["type"] for e in entities} <= {"PER", "LOC"}
    many = ner.extract_many(tiny_loaded, [text, "Fine-tuning adapts a model."], "PER, LOC", batch_size=2)
    assert len(many) == 2 and many[0] == entities  # batching does not change the greedy answer


@pytest.mark.real
def test_real_model_keeps_the_invariants(real_chat_loaded):
    # Zero-shot, the 135M model often finds nothing here (its CoNLL F1 is in bench/tasks_benchmark.py);
    # what must always hold is that whatever it returns is exactly in the text, with a requested type.
    text = "Last summer Maria flew to Paris to visit the Louvre."
    entities = ner.extract_entities(real_chat_loaded, text)
    assert_offsets_hold(text, entities)
    assert {e["type"] for e in entities} <= {"PER", "ORG", "LOC", "MISC"}


def test_cli_writes_entities_as_json_lines(tiny_loaded, tmp_path, capsys):
    from assistant.tasks.__main__ import main

    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "Maria flew to Paris."}\n\n{"text": "李明在北京。"}\n', encoding="utf-8")
    model = ["--model", tiny_loaded.location, "--quant", "fp32"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"txt": "missing"}\n', encoding="utf-8")
    assert main(["ner", "--input", str(bad), "--output", str(tmp_path / "o.jsonl"), *model]) == 2
    assert "'bad.jsonl' line 2 has no non-empty \"text\" field" in capsys.readouterr().err
    assert main(["ner", "--input", str(source), "--output", str(tmp_path / "o.jsonl"), *model,
                 "--entity-types", "PER, PER"]) == 2
    assert main(["ner", "--input", str(source), "--output", str(tmp_path / "o.jsonl"), *model]) == 0
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [row["text"] for row in rows] == ["Maria flew to Paris.", "李明在北京。"]
    for row in rows:
        assert_offsets_hold(row["text"], row["entities"])


def test_answer_stops_when_a_line_repeats():
    from assistant.core.generation import repeats_a_line

    assert repeats_a_line("PER: Ann\nLOC: Rome\nPER: Ann\n")
    assert not repeats_a_line("PER: Ann\nLOC: Rome\nPER: Ann")  # the last line may still grow

"""The composer's invariants on fixtures written for these tests (never on the CHAI reference data)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from studio.caption import ASPECTS, StructuredCaption
from studio.compose import ComposeOptions, compose
from studio.compose.text import content_words, split_clauses, split_sentences, word_count
from studio.errors import InputError

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def harbor() -> StructuredCaption:
    return StructuredCaption.load(FIXTURES / "harbor_dolly.json")


def source_sentences(caption):
    return [s for a in ASPECTS for s in split_sentences(caption.aspects[a].text)]


def test_every_output_sentence_is_cut_from_one_input_sentence(harbor):
    sources = source_sentences(harbor)
    prompt = compose(harbor, ComposeOptions(max_words=90)).prompt
    for sentence in split_sentences(prompt):
        words = content_words(sentence)
        assert any(words <= content_words(src) for src in sources), sentence
        # Kept clauses appear in their original order: the sentence is a subsequence of its source.
        assert any(_is_subsequence(sentence.lower().rstrip("."), src.lower()) for src in sources), sentence


def _is_subsequence(short: str, long: str) -> bool:
    it = iter(long.split())
    return all(word.strip(",;") in (w.strip(",;.") for w in _until(it, word.strip(",;"))) for word in short.split())


def _until(it, target):
    for w in it:
        yield w
        if w.strip(",;.") == target:
            return


def test_no_word_is_invented(harbor):
    vocabulary = {w for a in ASPECTS for w in harbor.aspects[a].text.lower().split()}
    vocabulary = {w.strip(".,;") for w in vocabulary}
    prompt = compose(harbor, ComposeOptions(max_words=60)).prompt
    assert {w.strip(".,;") for w in prompt.lower().split()} <= vocabulary


@pytest.mark.parametrize("budget", [20, 45, 80, 150, 260, 320])
def test_budget_is_respected(harbor, budget):
    result = compose(harbor, ComposeOptions(max_words=budget))
    assert result.report.words == word_count(result.prompt) <= budget


def test_everything_is_kept_when_it_fits(harbor):
    total = sum(word_count(harbor.aspects[a].text) for a in ASPECTS)
    result = compose(harbor, ComposeOptions(max_words=320))
    assert total < 320
    # Duplicated sentences go, everything else stays: full recall for every aspect.
    assert all(c == 1.0 for c in result.report.coverage.values()), result.report.coverage
    assert result.report.words < total  # the fisherman on his crate is said once, not twice


def test_near_duplicate_sentences_are_kept_once():
    caption = StructuredCaption.from_plain({
        "Subject": "A red vintage car is parked on a wet cobblestone street at night.",
        "Scene": "A red vintage car is parked on a wet cobblestone street at night. Neon signs glow above the shops.",
        "Camera": "The camera slowly cranes up from ground level to a high angle.",
    })
    prompt = compose(caption).prompt
    assert prompt.count("red vintage car") == 1
    assert "Neon signs glow above the shops." in prompt
    assert "The camera slowly cranes up from ground level to a high angle." in prompt


def test_redundant_clause_is_cut_and_new_clause_kept():
    caption = StructuredCaption.from_plain({
        "Subject": "A woman in a long green coat stands still.",
        "Spatial": "The woman stands in the center of the frame, wearing a long green coat, while a cyclist passes behind her on the right.",
    })
    prompt = compose(caption, ComposeOptions(max_words=28)).prompt
    assert "cyclist passes behind her" in prompt
    assert prompt.count("long green coat") == 1


def test_deterministic(harbor):
    first = compose(harbor, ComposeOptions(max_words=120))
    for _ in range(3):
        again = compose(StructuredCaption.from_json(harbor.to_json()), ComposeOptions(max_words=120))
        assert again.prompt == first.prompt
        assert again.report.to_dict() == first.report.to_dict()


def test_spatial_opens_and_camera_first_moves_camera_to_front(harbor):
    default = compose(harbor, ComposeOptions(max_words=150)).prompt
    assert default.startswith("The video presents a medium shot of the fisherman")
    camera_first = compose(harbor, ComposeOptions(max_words=150, camera_first=True)).prompt
    assert camera_first.startswith("The camera is at eye level")
    assert sorted(split_sentences(default)) == sorted(split_sentences(camera_first))


def test_report_explains_what_was_dropped(harbor):
    report = compose(harbor, ComposeOptions(max_words=60)).report
    assert set(report.coverage) == set(ASPECTS)
    assert all(0.0 <= v <= 1.0 for v in report.coverage.values())
    reasons = {d.reason for d in report.dropped}
    assert "budget" in reasons
    assert all(d.aspect in ASPECTS and d.text for d in report.dropped)
    full = compose(harbor, ComposeOptions(max_words=320)).report
    assert {d.reason for d in full.dropped} == {"duplicate"}


def test_token_count_uses_the_given_tokenizer(harbor):
    class CountingTokenizer:  # the composer only needs __call__ -> {"input_ids": [...]}, like HF tokenizers
        def __call__(self, text):
            return {"input_ids": list(range(600))}

    estimated = compose(harbor).report
    assert estimated.tokens_estimated and 0 < estimated.tokens < 512 and not estimated.warnings
    exact = compose(harbor, tokenizer=CountingTokenizer()).report
    assert exact.tokens == 600 and not exact.tokens_estimated
    assert any("512" in w for w in exact.warnings)


def test_empty_aspects_are_reported_and_all_empty_is_an_error():
    only_camera = StructuredCaption.from_plain({"Camera": "The camera whip pans from left to right."})
    report = compose(only_camera).report
    assert any("Subject" in w for w in report.warnings)
    with pytest.raises(InputError, match="every aspect is empty"):
        compose(StructuredCaption())


@pytest.mark.parametrize("bad", [0, 19, 321, 1000, "260", 2.5, True])
def test_bad_budgets_are_rejected(bad):
    with pytest.raises(InputError, match="max_words"):
        ComposeOptions(max_words=bad)


def test_clause_splitting_keeps_noun_phrases_whole():
    clauses = [c.text for c in split_clauses(
        "In a small room with a green and white color scheme, a large, two-story barn stands in the fog.")]
    assert clauses[0] == "In a small room with a green and white color scheme"
    assert "a large, two-story barn stands in the fog." in clauses
    pair = [c.text for c in split_clauses("Deep focus keeps both the man and the long corridor sharp, while the lights flicker.")]
    assert pair[0] == "Deep focus keeps both the man and the long corridor sharp"


def run_cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "studio", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_compose_cli_prints_prompt_and_json(tmp_path):
    plain = run_cli("compose", str(FIXTURES / "harbor_dolly.json"), "--max-words", "100")
    assert plain.returncode == 0, plain.stderr
    assert word_count(plain.stdout) <= 100
    as_json = run_cli("compose", str(FIXTURES / "harbor_dolly.json"), "--max-words", "100", "--json", "--camera-first")
    data = json.loads(as_json.stdout)
    assert data["report"]["words"] <= 100 and data["prompt"].startswith("The camera")
    # A saved StructuredCaption composes the same as the record it came from.
    saved = StructuredCaption.load(FIXTURES / "harbor_dolly.json").save(tmp_path / "caption.json")
    again = run_cli("compose", str(saved), "--max-words", "100")
    assert again.stdout == plain.stdout


@pytest.mark.parametrize("args, stdin, message", [
    (["compose", "/no/such/file.json"], None, "no such file"),
    (["compose", "-"], "{not json", "not valid JSON"),
    (["compose", "-"], '{"Lighting": "warm key light"}', "unknown aspect 'Lighting'"),
    (["compose", "-"], '{"Camera": 42}', "Camera: expected text"),
    (["compose", "-"], '[1, 2]', "expected a JSON object"),
    (["compose", "-", "--max-words", "400"], '{"Camera": "The camera pans left."}', "max_words"),
])
def test_compose_cli_errors_are_one_line_without_traceback(args, stdin, message):
    result = run_cli(*args, stdin=stdin)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_compose_path_does_not_import_torch():
    code = ("import sys, runpy; sys.argv=['studio','compose','" + str(FIXTURES / "harbor_dolly.json") + "'];"
            "import studio.cli as c; c.main(sys.argv[1:]); assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr

"""Every sentence the page shows, from plain values (`studio/ui/formatting.py`): badges, revision
histories, the prompt meter, progress and ETA, run cards, shot labels and error lines without
server paths."""

from __future__ import annotations

from studio.caption.editing import revise, with_edits, with_rewards
from studio.caption.structured import ASPECTS, StructuredCaption
from studio.errors import InputError, ModelLoadError
from studio.session import Composition, RunCard
from studio.ui import formatting

TEXTS = ["A dog.", "A park at noon.", "The dog runs left.", "Wide shot, dog centred.",
         "The camera is at eye level and dollies backward."]


def captioned() -> StructuredCaption:
    return with_edits(StructuredCaption(), dict(zip(ASPECTS, TEXTS)), 6000)


def test_history_lists_revisions_newest_first():
    caption = with_edits(captioned(), dict(zip(ASPECTS, [*TEXTS[:4], "Static camera."])), 6000)
    markdown = formatting.history_markdown(caption, "camera")
    assert markdown.index("#2 user") < markdown.index("#1 user")
    assert "manual edit" in markdown and "dollies backward" in markdown
    assert formatting.history_markdown(StructuredCaption(), "Camera") == "_No revisions yet._"
    for n in range(10):
        caption = revise(caption, "Camera", f"note {n}", f"Take {n}.")
    long = formatting.history_markdown(caption, "Camera", limit=3)
    assert long.count("- **#") == 3 and "#12 model" in long and "…and 9 older revision(s)" in long


def test_reward_badge_marks_a_stale_reward():
    caption = captioned()
    assert formatting.reward_badge(caption, "Camera") == "Reward: not scored"
    caption = with_rewards(caption, {"Camera": 0.734})
    assert formatting.reward_badge(caption, "Camera") == "Reward: 73% yes"
    caption = with_edits(caption, dict(zip(ASPECTS, [*TEXTS[:4], "Handheld camera."])), 6000)
    assert formatting.reward_badge(caption, "Camera") == "Reward: 73% yes (stale: text changed since scoring)"


def test_prompt_meter_states_words_tokens_and_the_limit():
    assert formatting.prompt_meter(3, 4, True, 512) == "**3 words · 4 / 512 tokens**: within the limit"
    assert "≈470 / 512 tokens**: close to the limit" in formatting.prompt_meter(400, 470, False, 512)
    over = formatting.prompt_meter(700, 900, False, 512)
    assert "over the limit" in over and "Fit to the limit" in over
    composed = Composition("one two three", {}, 5, True, 512)
    assert formatting.composition_meter(composed).startswith("**3 words · 5 / 512 tokens**")


def test_compose_summary_reports_coverage_drops_and_warnings():
    summary = formatting.compose_summary({"coverage": {"Subject": 1.0, "Camera": 0.5},
                                          "dropped": [{"reason": "budget"}, {"reason": "budget"},
                                                      {"reason": "duplicate"}],
                                          "warnings": ["Camera was cut"]})
    assert summary.splitlines() == ["Coverage: Subject 100%, Camera 50%  ", "Left out: 2 budget, 1 duplicate  ",
                                    "⚠ Camera was cut"]
    assert formatting.compose_summary({}) == "Coverage: n/a"


def test_progress_eta_and_best_of():
    assert formatting.step_bar("Zero-shot", 1, 4) == "▰▰▰▰▰▱▱▱▱▱▱▱▱▱▱▱▱▱▱▱ Zero-shot: step 1/4"
    assert formatting.step_bar("A", 9, 4, "done").startswith("▰" * 20 + " A: step 9/4 · done")
    assert formatting.eta_text(None) == "" and formatting.eta_text(4.4) == "about 4 s left"
    assert formatting.eta_text(125) == "about 2 min 05 s left"
    from studio.captioner.candidates import Candidate

    ranked = formatting.best_of_markdown("Camera", [Candidate("Static.", 0.9), Candidate("A pan.", 0.4)])
    assert ranked.splitlines()[1:] == ["1. **90%** Static.", "2. **40%** A pan."]
    assert ranked.splitlines()[0].startswith("**Camera: 2 candidates, best first** (the best is now in the box")
    kept = [Candidate("Mine.", 0.96, current=True), Candidate("Theirs.", 0.92)]
    shown = formatting.best_of_markdown("Camera", kept)
    assert shown.splitlines() == ["**Camera: your text and 1 candidates, best first** (your text stays in the box; "
                                  "pick any below)", "1. **96%** (your text) Mine.", "2. **92%** Theirs."]
    assert formatting.candidate_choices(kept) == [("1. 96% · your text · Mine.", 0), ("2. 92% · Theirs.", 1)]


def test_run_cards_and_shot_labels():
    card = RunCard("20250101-120000-a-kite", "2025-01-01T12:00:00", "A kite " * 40, 7, "finetuned", "ti2v-5b",
                   "64×64", 2, 0.25, None, {"CHAI-finetuned Wan2.2": 0.81})
    shown = formatting.card_html(card)
    assert shown.startswith('<div class="run-card"><b>2025-01-01 12:00</b><br>') and shown.endswith("</i></div>")
    date, settings, seed, judged, prompt = shown.removeprefix('<div class="run-card">').split("<br>")
    assert settings == "finetuned · ti2v-5b · 64×64 · 0.25 s"
    assert seed == "seed 7 · 2 steps · final" and judged == "CHAI-finetuned Wan2.2 81%"
    assert prompt.startswith("<i>A kite") and prompt.endswith("…</i></div>") and len(prompt) == 90 + 13
    hostile = RunCard("r", "", "<script>alert(1)</script>", 1, "prompt", "ti2v-5b", "64×64", 2, 0.25, None)
    assert "<script>" not in formatting.card_html(hostile) and "&lt;script&gt;" in formatting.card_html(hostile)
    assert formatting.shot_label(2, 1.0, 2.0) == "Shot 2: 1.00–2.00 s"  # numbered like `studio shots`


def test_error_lines_show_file_names_not_server_paths():
    message = formatting.error_message(InputError("/tmp/gradio/0a1b/clip.avi is 70.0 s long; see "
                                                  "/srv/studio/outputs/x/", "clip"))
    assert message == "clip: clip.avi is 70.0 s long; see (folder)"
    assert "huggingface.co/Wan-AI/x" in formatting.without_paths("see https://huggingface.co/Wan-AI/x")
    assert "org/model" in formatting.without_paths("could not load 'org/model' or ./local/dir")
    unexpected = formatting.error_message(TypeError("'<' not supported between instances of 'dict' and 'int'"))
    assert "dict" not in unexpected and "TypeError" in unexpected and "nothing you had was lost" in unexpected
    assert "nested too deeply" in formatting.error_message(RecursionError())
    assert formatting.error_line(ModelLoadError("no <b>GPU</b>")) == "⚠ no <b>GPU</b>".replace("<", "&lt;"
                                                                                              ).replace(">", "&gt;")

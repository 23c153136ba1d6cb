"""The session API (`studio.session`): each request checked once by one rule, the same words from
the page's requests and the command line, and every step run on the tiny checkpoints."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import pytest

from studio.caption.structured import ASPECTS, StructuredCaption
from studio.cli import main
from studio.config import StudioConfig
from studio.errors import InputError, StudioError
from studio.generation.settings import MAX_SEED
from studio.tiny.locations import model_locations
from studio.session import (
    AspectRequest, BestOfRequest, CaptionRequest, CaptionText, ClipRange, ComposeRequest, Done, GenerateRequest,
    Limits, RunRequest, Session, SideStep, Status,
)

LIMITS = Limits.from_config(StudioConfig())
TINY = model_locations(StudioConfig(tiny=True))  # the tiny presets' sizes
PROMPT = "A lighthouse keeper climbs the spiral stairs at dusk; the camera tilts up slowly."


def refusal(build) -> InputError:
    with pytest.raises(InputError) as caught:
        build()
    return caught.value


# -- requests: good values become typed values ---------------------------------------------------

def test_good_values_become_typed_values(reference_clip):
    clip = ClipRange.from_user(str(reference_clip), "0.25", "1.5", None, LIMITS)
    assert (clip.path, clip.start, clip.end, clip.shot, clip.shot_index) == (reference_clip, 0.25, 1.5, None, None)
    shot = ClipRange.from_user(reference_clip, 0, 0, "2", LIMITS)  # the page's empty range: 0 and 0
    assert (shot.start, shot.end, shot.shot, shot.shot_index) == (0, None, 2, 1)

    caption = CaptionRequest.from_user(shot, LIMITS, ["camera", "Camera", "subject"], 1, "4", "16")
    assert (caption.aspects, caption.two_stage, caption.fps, caption.max_new_tokens) == (
        ("Camera", "Subject"), True, 4.0, 16)
    assert CaptionRequest.from_user(shot, LIMITS).fps == LIMITS.caption_fps
    aspect = AspectRequest.from_user(shot, LIMITS, "motion", "  He walks.  ", " Say how fast. ")
    assert (aspect.aspect, aspect.text, aspect.critique) == ("Motion", "He walks.", "Say how fast.")
    assert BestOfRequest.from_user(shot, LIMITS, "camera", "3").n == 3

    words = ComposeRequest.from_user(StructuredCaption.from_plain({"Camera": "A pan."}), LIMITS, "Camera first", "80")
    assert (words.mode, words.max_words) == ("Camera first", 80)
    assert ComposeRequest.from_user(words.caption, LIMITS).max_words == LIMITS.default_words

    run = GenerateRequest.from_user(LIMITS, f"  {PROMPT} ", "ti2v-5b", locations=TINY, frames="5", width="64",
                                    height=64, steps="2", seed=str(MAX_SEED), mode="auto")
    s = run.settings
    assert (run.prompt, run.mode, s.num_frames, s.width, s.height, s.steps, s.seed) == (PROMPT, None, 5, 64, 64, 2,
                                                                                        MAX_SEED)
    assert 0 <= GenerateRequest.from_user(LIMITS, PROMPT, "ti2v-5b", locations=TINY, seed="").settings.seed <= MAX_SEED
    assert RunRequest.from_user(" 20260101-120000-ab12 ").run_id == "20260101-120000-ab12"


def test_one_seed_rule_everywhere():
    assert LIMITS.max_seed == MAX_SEED == 2**32 - 1


# -- requests: each bad value is refused, naming the field ---------------------------------------

def clip_refusals(clip: Path, root: Path) -> list[tuple]:
    notes = root / "notes.txt"
    notes.write_text("not a video")
    return [
        (lambda: ClipRange.from_user(None, limits=LIMITS), "reference", "upload a reference clip"),
        (lambda: ClipRange.from_user(root / "gone.mp4", limits=LIMITS), "reference", "no such file gone.mp4"),
        (lambda: ClipRange.from_user(notes, limits=LIMITS), "reference", "notes.txt is not a video file"),
        (lambda: ClipRange.from_user(clip, limits=dataclasses.replace(LIMITS, max_upload_mb=0)), "reference",
         "the limit is 0 MB"),
        (lambda: ClipRange.from_user(clip, shot=0), "shot", "shots are numbered from 1"),
        (lambda: ClipRange.from_user(clip, shot=1.5), "shot", "whole number"),
        (lambda: ClipRange.from_user(clip, start=0.5, shot=1), "shot", "either a shot or a start/end range"),
        (lambda: ClipRange.from_user(clip, start=1.0, end=0.5), "end", "must be after start"),
        (lambda: ClipRange.from_user(clip, start=-1), "start", "must be 0 or more, got -1"),
        (lambda: ClipRange.from_user(clip, start="soon"), "start", "expected a number, got text 'soon'"),
    ]


def test_a_bad_clip_range_is_refused_naming_the_field(reference_clip, tmp_path):
    for build, field, words in clip_refusals(reference_clip, tmp_path):
        error = refusal(build)
        assert error.field == field and words in str(error), (field, str(error))


@pytest.mark.parametrize("build, field, words", [
    (lambda clip: CaptionRequest.from_user(clip, LIMITS, fps=0), "fps", "between 0.1 and 30, got 0"),
    (lambda clip: CaptionRequest.from_user(clip, LIMITS, max_new_tokens=0), "max_new_tokens", "between 1"),
    (lambda clip: CaptionRequest.from_user(clip, LIMITS, ["lighting"]), None, "unknown aspect"),
    (lambda clip: AspectRequest.from_user(clip, LIMITS, "Scene", "  "), "Scene", "the Scene text is empty"),
    (lambda clip: AspectRequest.from_user(clip, LIMITS, "Scene", "x" * (LIMITS.max_aspect_chars + 1)), "Scene",
     f"the limit is {LIMITS.max_aspect_chars}"),
    (lambda clip: AspectRequest.from_user(clip, LIMITS, "Scene", "A pier.", "", verb="revise", needs_critique=True),
     "Scene", "write a critique for Scene"),
    (lambda clip: AspectRequest.from_user(clip, LIMITS, "Scene", 42), "Scene", "expected text, got a number"),
    (lambda clip: BestOfRequest.from_user(clip, LIMITS, "Camera", 1), "n", "between 2 and 8"),
    (lambda clip: BestOfRequest.from_user(clip, LIMITS, "Camera", 9), "n", "between 2 and 8"),
], ids=["fps-0", "tokens-0", "aspect", "empty-text", "long-text", "revise-without-critique", "text-kind",
        "best-of-1", "best-of-9"])
def test_a_bad_step_request_is_refused_naming_the_field(reference_clip, build, field, words):
    error = refusal(lambda: build(ClipRange(reference_clip)))
    assert words in str(error)
    if field is not None:
        assert error.field == field


CAMERA_ONLY = StructuredCaption.from_plain({"Camera": "The camera pans left."})


@pytest.mark.parametrize("build, field, words", [
    (lambda: ComposeRequest.from_user(StructuredCaption(), LIMITS), "compose", "every aspect is empty"),
    (lambda: ComposeRequest.from_user(CAMERA_ONLY, LIMITS, "Poem"), "mode", "unknown composer mode"),
    (lambda: ComposeRequest.from_user(CAMERA_ONLY, LIMITS, max_words=5), "max_words", "between 20 and 320, got 5"),
    (lambda: GenerateRequest.from_user(LIMITS, "  ", "ti2v-5b"), "prompt", "the prompt is empty"),
    (lambda: GenerateRequest.from_user(LIMITS, "x" * (LIMITS.max_prompt_chars + 1), "ti2v-5b"), "prompt",
     "the limit is"),
    (lambda: GenerateRequest.from_user(LIMITS, PROMPT, "t2v-9000"), "preset", "unknown model preset"),
    (lambda: GenerateRequest.from_user(LIMITS, PROMPT, "ti2v-5b", mode="sideways"), "mode",
     "unknown comparison mode"),
    (lambda: GenerateRequest.from_user(LIMITS, PROMPT, "ti2v-5b", mode="prompt"), "short_prompt",
     "write the short prompt"),
    (lambda: GenerateRequest.from_user(LIMITS, PROMPT, "ti2v-5b", seed=-2), "seed", "must be -1 (random)"),
    (lambda: GenerateRequest.from_user(LIMITS, PROMPT, "ti2v-5b", seed=2**32), "seed", f"and {MAX_SEED}"),
    (lambda: GenerateRequest.from_user(LIMITS, PROMPT, "ti2v-5b", seed="abc"), "seed", "expected a number"),
    (lambda: GenerateRequest.from_user(LIMITS, PROMPT, "ti2v-5b", seed=1.5), "seed", "whole number"),
    (lambda: GenerateRequest.from_user(LIMITS, PROMPT, "ti2v-5b", steps=0), "steps", "between 1 and 200"),
    (lambda: GenerateRequest.from_user(LIMITS, PROMPT, "ti2v-5b", seconds=1, frames=9), "duration", "not both"),
    (lambda: GenerateRequest.from_user(LIMITS, PROMPT, "t2v-a14b", image=__file__), "image", "text only"),
    (lambda: GenerateRequest.from_user(LIMITS, PROMPT, "ti2v-5b", image=__file__), "image", "is not an image"),
    (lambda: GenerateRequest.from_user(LIMITS, PROMPT, "ti2v-5b", guidance_2=3), "guidance_2", "one expert"),
    (lambda: RunRequest.from_user("  "), "run", "name a run"),
], ids=["compose-empty", "compose-mode", "words-5", "prompt-empty", "prompt-long", "preset", "mode",
        "short-prompt", "seed-minus-2", "seed-2^32", "seed-abc", "seed-1.5", "steps-0", "seconds-and-frames",
        "image-on-a14b", "image-not-an-image", "guidance-2-on-ti2v", "run-empty"])
def test_a_bad_prompt_or_setting_is_refused_naming_the_field(build, field, words):
    error = refusal(build)
    assert error.field == field and words in str(error), str(error)


# -- the same rule, in the same words, from the command line ------------------------------------

def cli_error(capsys, *argv) -> str:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 2 and out == "", err
    return err


def test_the_command_line_refuses_with_the_requests_words(reference_clip, tmp_path, capsys):
    cases = [
        (["generate", "--prompt", PROMPT, "--seed", 2**32],
         lambda: GenerateRequest.from_user(LIMITS, PROMPT, "ti2v-5b", seed=2**32)),
        (["generate", "--prompt", PROMPT, "--seed", "abc"],
         lambda: GenerateRequest.from_user(LIMITS, PROMPT, "ti2v-5b", seed="abc")),
        (["generate", "--prompt", " "], lambda: GenerateRequest.from_user(LIMITS, " ", "ti2v-5b")),
        (["caption", reference_clip, "--shot", 0], lambda: ClipRange.from_user(reference_clip, shot=0)),
        (["caption", reference_clip, "--shot", 1, "--start", 0.5],
         lambda: ClipRange.from_user(reference_clip, 0.5, shot=1)),
        (["caption", reference_clip, "--start", 1, "--end", 0.5],
         lambda: ClipRange.from_user(reference_clip, 1, 0.5)),
        (["caption", tmp_path / "gone.mp4"], lambda: ClipRange.from_user(tmp_path / "gone.mp4", limits=LIMITS)),
        (["caption", reference_clip, "--fps", 0],
         lambda: CaptionRequest.from_user(ClipRange(reference_clip), LIMITS, fps=0)),
        (["compose", "-", "--max-words", 5], lambda: ComposeRequest.from_user(CAMERA_ONLY, LIMITS, max_words=5)),
    ]
    for argv, build in cases:
        if argv[0] == "compose":
            import io
            import sys

            sys.stdin, stdin = io.StringIO(CAMERA_ONLY.to_json()), sys.stdin
            try:
                err = cli_error(capsys, *argv)
            finally:
                sys.stdin = stdin
        else:
            err = cli_error(capsys, *argv, "--device", "cpu", "--output-dir", tmp_path / "runs") \
                if argv[0] == "generate" else cli_error(capsys, *argv, "--device", "cpu")
        assert err == f"error: {refusal(build)}\n", argv
    assert not (tmp_path / "runs").exists()


# -- the steps, on the tiny checkpoints ----------------------------------------------------------

@pytest.fixture(scope="module")
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def session(ui_tiny_dir, tmp_path_factory, one_torch_thread):
    from studio.session.models import unload_captioner

    unload_captioner()  # the first caption below must be the one that loads it
    config = StudioConfig(tiny=True, tiny_dir=ui_tiny_dir, device="cpu",
                          output_dir=tmp_path_factory.mktemp("session-runs"))
    yield Session(config)
    unload_captioner()


def events_of(steps) -> list:
    return list(steps)


def test_caption_streams_then_ends_with_the_caption(session, reference_clip):
    request = CaptionRequest.from_user(session.clip(reference_clip, shot=2), session.limits, max_new_tokens=6)
    events = events_of(session.caption(request))
    assert isinstance(events[0], Status) and events[0].message.startswith("Loading the captioner…")
    streamed = [e for e in events if isinstance(e, CaptionText)]
    assert streamed and set(streamed[-1].texts) == set(ASPECTS)
    done = events[-1]
    assert isinstance(done, Done) and isinstance(done.result, StructuredCaption)
    assert all(done.result[a].text for a in ASPECTS) and (done.result.provenance.start, done.result.provenance.end) \
        == (1.0, 2.0)
    again = events_of(session.caption(dataclasses.replace(request, aspects=("Camera",))))
    assert not any(isinstance(e, Status) and "Loading" in e.message for e in again)  # loaded once, shared
    assert again[-1].result["Camera"].text and not again[-1].result["Subject"].text


def test_a_cut_inside_the_range_is_said_and_a_missing_shot_numbered_from_one(session, reference_clip):
    whole = CaptionRequest.from_user(session.clip(reference_clip), session.limits, ["Camera"], max_new_tokens=4)
    events = events_of(session.caption(whole))
    assert any(isinstance(e, Status) and "cut at 1.00 s" in e.message for e in events)
    assert "cut at 1.00 s" in events[-1].message
    error = refusal(lambda: session.sample(session.clip(reference_clip, shot=3)))
    assert str(error) == "shot: there is no shot 3; the clip has 2 shot(s), numbered 1 to 2"
    assert (error.code, error.details) == ("no-such-shot", {"shot_count": 2})


def test_a_shot_is_renumbered_by_the_errors_code_not_its_wording(reference_clip):
    clip = ClipRange.from_user(reference_clip, shot=4)

    def raising(error: InputError) -> InputError:
        with pytest.raises(InputError) as raised, clip.numbered_from_one():
            raise error
        return raised.value

    reworded = raising(InputError("shot 3 is past the last cut", "shot", "no-such-shot", shot_count=3))
    assert str(reworded) == "shot: there is no shot 4; the clip has 3 shot(s), numbered 1 to 3"
    # The old wording without the code is some other refusal, passed on untouched.
    lookalike = InputError("there is no shot 3; the clip has 3 shot(s), numbered 0 to 2", "shot")
    assert raising(lookalike) is lookalike


@pytest.mark.parametrize("value, whole, expected", [
    (True, False, "expected a number, got true/false"),
    ("2.5", True, "must be a whole number, got 2.5"),
    (2.5, True, "must be a whole number, got 2.5"),
    ("１２", False, "expected a number written with the digits 0-9, got text '１２'"),
    ("١٢", True, "expected a number written with the digits 0-9"),
    ("1_000", False, "expected a number written with the digits 0-9"),
    ("nan", False, "expected a finite number, got nan"),
    (float("inf"), False, "expected a finite number, got inf"),
    (10**400, True, "expected a finite number, got inf"),
    ([1], False, "expected a number, got a list"),
])
def test_the_one_number_rule_refuses_what_is_no_plain_number(value, whole, expected):
    from studio import values

    with pytest.raises(InputError) as refused:
        (values.whole if whole else values.number)(value, "box")
    assert str(refused.value).startswith(f"box: {expected}") and refused.value.field == "box" and refused.value.code


def test_the_number_rule_reads_plain_numbers_and_numeric_text():
    from studio import values

    assert values.whole(" 12 ", "box") == 12 and values.whole(3.0, "box") == 3 and values.number("1e3", "box") == 1000
    assert values.number("-0.5", "box", -1, 0) == -0.5


def test_refining_steps_return_their_types_and_decode_the_clip_once(session, reference_clip, monkeypatch):
    import studio.captioner as captioner_module

    decoded = []
    load_clip = captioner_module.load_clip
    monkeypatch.setattr(captioner_module, "load_clip", lambda *a, **k: decoded.append(a) or load_clip(*a, **k))
    clip = session.clip(reference_clip, 0, 0.9)
    caption = StructuredCaption.from_plain({"Subject": "A red square.", "Camera": "A static shot."})
    camera = AspectRequest.from_user(clip, session.limits, "camera", caption["Camera"].text, max_new_tokens=6)

    score = session.score(camera)
    assert isinstance(score, float) and 0 < score < 1
    critique = session.critique(camera)
    assert isinstance(critique, str)
    revise = dataclasses.replace(camera, critique="Say that the camera tilts up.")
    revised = session.revise(revise, caption)
    assert isinstance(revised, str) and len(revised) <= session.limits.max_aspect_chars
    assert caption["Camera"].text == revised and caption["Camera"].history[-1].before == "A static shot."
    with pytest.raises(InputError, match="write a critique for Camera"):
        session.revise(camera)
    scores = session.score_all(clip, caption)
    assert set(scores) == {"Subject", "Camera"} and all(isinstance(v, float) for v in scores.values())
    ranked = session.best_of_n(BestOfRequest.from_user(clip, session.limits, "Subject", 2))
    assert len(ranked) == 2 and all(isinstance(c.text, str) and isinstance(c.reward, float) for c in ranked)
    assert ranked[0].reward >= ranked[1].reward and not any(c.current for c in ranked)
    mine = "A lighthouse keeper in a yellow coat."
    ranked = session.best_of_n(BestOfRequest.from_user(clip, session.limits, "Subject", 2, f"  {mine} "))
    assert len(ranked) == 3 and [c.text for c in ranked if c.current] == [mine]  # scored with the candidates
    assert [c.reward for c in ranked] == sorted((c.reward for c in ranked), reverse=True)
    assert len(decoded) == 1  # five steps on one range, one decode


def test_best_of_n_keeps_the_current_text_when_it_scores_highest(session, reference_clip):
    """The rule on real rewards: the tiny captioner scores real texts in one batch; whichever scores
    highest plays the user's current text, and it must stay first (kept); played by the lowest, it
    must give way to the best candidate; on a tie it stays."""
    from studio.captioner.candidates import rank_candidates

    texts = ["The camera pans left across the harbour.", "A static wide shot at eye level.",
             "The camera tilts up slowly to the sky.", "A handheld close-up that drifts right."]
    clip = session.sample(session.clip(reference_clip, shot=1))
    rewards = session.models.captioner().rewards(clip, "Camera", texts)
    order = sorted(range(len(texts)), key=lambda i: -rewards[i])
    assert rewards[order[0]] > rewards[order[-1]]  # real, different scores

    def ranked_with(current: int):
        others = [i for i in range(len(texts)) if i != current]
        return rank_candidates(texts[current], [texts[i] for i in others], [rewards[current]] + [rewards[i] for i in others])

    kept = ranked_with(order[0])
    assert kept[0].current and kept[0].text == texts[order[0]] and kept[0].reward == rewards[order[0]]
    assert [c.reward for c in kept] == sorted(rewards, reverse=True) and len(kept) == len(texts)
    replaced = ranked_with(order[-1])
    assert not replaced[0].current and replaced[0].text == texts[order[0]] and replaced[-1].current
    tie = rank_candidates(texts[0], [texts[1]], [rewards[0], rewards[0]])
    assert tie[0].current and tie[0].text == texts[0]


def test_a_second_captioner_gives_a_second_caption(session, reference_clip):
    compare = Session(session.config.replace(compare_captioner=str(session.config.tiny_dir / "captioner")))
    request = CaptionRequest.from_user(compare.clip(reference_clip, shot=1), compare.limits, ["Camera", "Scene"],
                                       max_new_tokens=4)
    events = events_of(compare.caption(request, compare=True))
    assert events[0] == Status("Loading the second captioner…")
    assert events[-1].result["Camera"].text and events[-1].result["Scene"].text
    second = compare.models.loaded_compare_captioner()
    assert second is not None and second is not compare.models.captioner()
    with pytest.raises(StudioError, match="--compare-captioner"):
        events_of(session.caption(request, compare=True))


LONG_CAPTION = StructuredCaption.from_plain({
    aspect: " ".join(f"{aspect.lower()}{i} glimmers beside quartz{i} while the zephyr{i} drifts." for i in range(20))
    for aspect in ASPECTS})


def test_compose_counts_tokens_and_fit_to_limit_fits_them(session):
    request = ComposeRequest.from_user(LONG_CAPTION, session.limits, "Extractive", 320)
    full = session.compose(request)
    assert full.exact_tokens and full.over_limit and full.tokens > session.limits.token_limit
    fitted = session.fit_to_limit(request)
    assert fitted.exact_tokens and not fitted.over_limit and fitted.report["words"] < 320
    assert session.count_tokens(fitted.prompt) == (fitted.tokens, True) and fitted.tokens < 512
    # The budget steps down by 10 words: the next budget up did not fit.
    assert session.compose(ComposeRequest(LONG_CAPTION, "Extractive", fitted.report["max_words"] + 10)).over_limit


def test_compose_fit_on_the_command_line_is_the_sessions(session, tmp_path, capsys):
    source = tmp_path / "long.json"
    source.write_text(LONG_CAPTION.to_json())
    code = main(["compose", str(source), "--fit", "--max-words", "320", "--json", "--tiny", "--tiny-dir",
                 str(session.config.tiny_dir)])
    printed = json.loads(capsys.readouterr().out)
    fitted = session.fit_to_limit(ComposeRequest.from_user(LONG_CAPTION, session.limits, max_words=320))
    assert code == 0 and printed["prompt"] == fitted.prompt
    assert (printed["tokens"], printed["exact_tokens"], printed["token_limit"]) == (fitted.tokens, True, 512)


def test_compose_without_a_tokenizer_estimates_and_never_imports_torch(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from studio.config import StudioConfig; from studio.session import *\n"
            "from studio.caption.structured import StructuredCaption\n"
            "config = StudioConfig(baseline='/no/such/model')\n"
            "session = Session(config, SharedModels(config, load_tokenizer=False))\n"
            "caption = StructuredCaption.from_plain({'Camera': 'The camera pans left.'})\n"
            "c = session.compose(ComposeRequest.from_user(caption, session.limits))\n"
            "print(c.exact_tokens, c.tokens > 0, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.stdout.split() == ["False", "True", "False"], done.stderr


def tiny_run(session, prompt=PROMPT, **settings) -> GenerateRequest:
    values = dict(locations=session.locations, width=64, height=64, steps=2, seconds=0.3, seed=5)
    return GenerateRequest.from_user(session.limits, prompt, "ti2v-5b", **{**values, **settings})


@pytest.fixture(scope="module")
def finished_run(session):
    caption = StructuredCaption.from_plain({"Camera": "The camera tilts up slowly.", "Subject": "A keeper."})
    events = events_of(session.generate(dataclasses.replace(tiny_run(session, preview_every=1), caption=caption)))
    return events


def test_generate_reports_both_sides_with_eta_and_previews(finished_run):
    steps = [e for e in finished_run if isinstance(e, SideStep)]
    assert {e.side for e in steps} == {"finetuned", "baseline"}
    assert all(e.eta_s is not None and e.eta_s >= 0 for e in steps) and steps[-1].eta_s == 0
    assert all(e.preview is not None for e in steps) and {e.total for e in steps} == {2}
    done = finished_run[-1]
    assert isinstance(done, Done) and done.result.seed == 5 and done.result.side_by_side_video.is_file()
    assert isinstance(finished_run[0], Status)


def test_a_prompt_over_the_token_limit_is_refused_before_rendering(session, finished_run):
    before = set(session.config.output_dir.iterdir())
    long_prompt = " ".join(f"zephyr{i} quartz{i}" for i in range(300))
    events = []
    with pytest.raises(InputError) as caught:
        for event in session.generate(tiny_run(session, long_prompt)):
            events.append(event)
    assert caught.value.field == "prompt" and "the text encoder reads 512" in str(caption_text := caught.value)
    assert not any(isinstance(e, SideStep) for e in events) and "Fit to the limit" in str(caption_text)
    assert set(session.config.output_dir.iterdir()) == before


def test_a_cancelled_run_writes_nothing_or_only_its_finished_side(session, finished_run):
    from studio.generation import Cancelled

    before = set(session.config.output_dir.iterdir())
    cancel = threading.Event()
    seen, done = [], []
    try:
        for event in session.generate(tiny_run(session, seed=6, steps=6), cancel):
            if isinstance(event, SideStep):
                seen.append(event)
                cancel.set()
            elif isinstance(event, Done):
                done.append(event)
    except Cancelled:
        # Stopped during the first side: nothing is written.
        assert not done and set(session.config.output_dir.iterdir()) == before
    else:
        # The worker runs on while the first step is read; had it finished the first side by the
        # time the cancel landed, that side is kept as a partial run, never the whole run.
        result = done[-1].result
        assert result.partial and result.missing_sides == ["finetuned"] and set(result.videos) == {"baseline"}
        assert done[-1].message.startswith("Cancelled: kept the finished ")
        assert set(session.config.output_dir.iterdir()) == before | {result.run_dir}
    assert 1 <= len(seen) < 12 and not any(e.side == "finetuned" and e.step == 6 for e in seen)


def test_history_cards_reload_and_import_of_a_real_run(session, finished_run):
    result = finished_run[-1].result
    run_id = Path(result.run_dir).name
    card = next(c for c in session.runs.cards() if c.run_id == run_id)
    assert (card.seed, card.preset, card.size, card.steps, card.mode) == (5, "ti2v-5b", "64×64", 2, "finetuned")
    assert card.lines[2] == "seed 5 · 2 steps · final" and card.lines[3] == "not judged" and card.poster
    assert session.runs.cards(only=["someone-else"]) == []

    view = session.runs.reload(run_id)
    assert view.run_id == run_id and view.prompt == PROMPT and view.settings["seed"] == 5
    assert view.settings["resolution"] == "64x64" and view.caption["Camera"].text == "The camera tilts up slowly."
    assert [label for label, _ in view.videos] and all(Path(v).is_file() for _, v in view.videos)
    for dropped in (Path(result.run_json), Path(result.side_by_side_video)):
        imported = session.runs.import_file(dropped)
        assert imported.run_id is None and imported.prompt == PROMPT and imported.settings == view.settings
        assert dropped.name in imported.message
    notes = session.config.output_dir / "notes.txt"
    notes.write_text("hello")
    assert refusal(lambda: session.runs.import_file(notes)).field == "run file"
    assert refusal(lambda: session.runs.reload("../../etc")).field in ("run", None)


def test_judge_writes_judge_json_and_the_card_shows_the_means(session, finished_run):
    run_dir = Path(finished_run[-1].result.run_dir)
    judgement = session.judge(run_dir.name)
    assert (run_dir / "judge.json").is_file()
    assert json.loads((run_dir / "judge.json").read_text())["aspects"].keys() == judgement["aspects"].keys()
    card = next(c for c in session.runs.cards() if c.run_id == run_dir.name)
    assert len(card.judged) == 2 and all(0 <= v <= 1 for v in card.judged.values())
    assert card.lines[3] != "not judged" and card.lines[3].count("%") == 2


def test_switching_preset_or_finetune_frees_the_previous_generator(ui_tiny_dir, tiny_models, tmp_path):
    """One generator is alive at a time: on a GPU an old pair left referenced is 20-60 GB never freed."""
    import gc
    import weakref

    from studio.session import SharedModels
    tiny_models("wan-a14b", "finetuned-transformer")
    config = StudioConfig(tiny=True, tiny_dir=ui_tiny_dir, device="cpu", output_dir=tmp_path)
    models = SharedModels(config)
    first = models.generator("ti2v-5b")
    assert models.loaded_tokenizer() is first.models.tokenizer
    gone = weakref.ref(first)
    del first
    # The tiny LoRA named explicitly is the same weights: kept, not reloaded.
    assert models.generator("ti2v-5b", finetuned=str(ui_tiny_dir / "finetuned-lora")) is gone()
    second = models.generator("ti2v-5b", finetuned=str(ui_tiny_dir / "finetuned-transformer"))  # another finetune
    gc.collect()
    assert gone() is None and models.loaded_tokenizer() is second.models.tokenizer
    gone = weakref.ref(second)
    del second
    third = models.generator("t2v-a14b")  # another preset
    gc.collect()
    assert gone() is None and models.loaded_tokenizer() is third.models.tokenizer


def test_a_captioner_key_change_frees_the_previous_captioner(ui_tiny_dir, tmp_path):
    """One captioner per process, whoever asks: a new location or dtype frees the old 8B model first."""
    import gc
    import shutil
    import weakref

    from studio.session import SharedModels
    from studio.session.models import loaded_captioner, unload_captioner

    unload_captioner()
    other = shutil.copytree(ui_tiny_dir / "captioner", tmp_path / "other-captioner")
    config = StudioConfig(captioner=str(ui_tiny_dir / "captioner"), device="cpu", output_dir=tmp_path)
    first = SharedModels(config).captioner()
    # The page's view and a second view (a batch, the judge) share it.
    assert SharedModels(config).captioner() is first and loaded_captioner() is first
    gone = weakref.ref(first)
    del first
    second = SharedModels(config.replace(captioner=str(other))).captioner()
    gc.collect()
    assert gone() is None and loaded_captioner() is second and second.model_id.endswith("other-captioner")
    gone = weakref.ref(second)
    del second
    third = SharedModels(config.replace(captioner=str(other), dtype="bfloat16")).captioner()
    gc.collect()
    assert gone() is None and loaded_captioner() is third
    del third
    assert unload_captioner() and loaded_captioner() is None

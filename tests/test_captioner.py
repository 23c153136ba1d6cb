"""The captioner through the real transformers classes, on the tiny checkpoint built by our code."""

from __future__ import annotations

import json

import pytest

from studio.compose.text import word_count
from clipmaker import write_clip

from studio.caption import StructuredCaption
from studio.captioner import ASPECTS, Captioner, PromptPack, caption_clip
from studio.session.models import SharedModels, unload_captioner
from studio.captioner.packs import TINY_PACK
from studio.captioner import model as captioner_model
from studio.compose import ComposeOptions, compose
from studio.config import StudioConfig
from studio.errors import InputError, ModelLoadError, StudioError
from studio.video import sample_clip


@pytest.fixture(scope="session")
def tiny_captioner_dir(tiny_models):
    return tiny_models("captioner")["captioner"]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The tiny model is far too small to gain from threads, and on a shared 2-core runner extra
    threads spin against other processes; restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def captioner(tiny_captioner_dir):
    return Captioner.from_pretrained(tiny_captioner_dir, device="cpu", pack=PromptPack.load(TINY_PACK))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("captioner-clips")
    return {"plain": write_clip(root / "plain.mp4", seconds=2.0),
            "cut": write_clip(root / "cut.mp4", seconds=2.0, cut_at=1.0)}


@pytest.fixture(scope="module")
def clip(clips):
    return sample_clip(clips["plain"], check_cuts=False)


def test_tiny_checkpoint_loads_like_the_real_one(tiny_captioner_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor, Qwen3VLConfig

    files = {p.name for p in tiny_captioner_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "processor_config.json"} <= files
    config = json.loads((tiny_captioner_dir / "config.json").read_text())
    assert config["model_type"] == "qwen3_vl" and config["architectures"] == ["Qwen3VLForConditionalGeneration"]
    processor = AutoProcessor.from_pretrained(tiny_captioner_dir)
    model = AutoModelForImageTextToText.from_pretrained(tiny_captioner_dir)
    assert isinstance(model.config, Qwen3VLConfig)
    assert type(processor).__name__ == "Qwen3VLProcessor"
    tokenizer = processor.tokenizer
    for token in ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|video_pad|>", "<|image_pad|>"):
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1, token
    assert model.config.video_token_id == tokenizer.convert_tokens_to_ids("<|video_pad|>")
    chat = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "hi"}]}],
        add_generation_prompt=True, tokenize=False)
    assert chat == "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>hi<|im_end|>\n<|im_start|>assistant\n"
    assert sum(p.numel() for p in model.parameters()) < 10_000_000


def test_five_aspects_in_one_batch_match_one_by_one(captioner, clip):
    batched = captioner.caption(clip)
    assert list(batched) == list(ASPECTS)
    assert all(isinstance(t, str) and t for t in batched.values())
    assert {a: captioner.caption(clip, [a])[a] for a in ASPECTS} == batched  # greedy, left padding


def test_streaming_reports_each_aspect_and_ends_on_the_final_text(captioner, clip):
    seen: dict[str, list[str]] = {}
    result = captioner.caption(clip, ["Camera", "Subject"], on_text=lambda a, t: seen.setdefault(a, []).append(t))
    assert set(seen) == {"Camera", "Subject"}
    for aspect, texts in seen.items():
        assert len(texts) > 1 and texts[-1] == result[aspect]
    assert any(t != result["Camera"] for t in seen["Camera"][:-1])  # partial texts came first


def test_two_stage_gives_motion_and_spatial_their_context(captioner, clip, monkeypatch):
    calls = []
    original = Captioner._generate

    def recording(self, clip_, prompts, labels, *args, **kwargs):
        outputs = original(self, clip_, prompts, labels, *args, **kwargs)
        calls.append((list(labels), list(prompts), outputs))
        return outputs

    monkeypatch.setattr(Captioner, "_generate", recording)
    result = captioner.caption(clip, two_stage=True)
    assert list(result) == list(ASPECTS)
    assert [c[0] for c in calls] == [["Subject", "Scene", "Camera"], ["Motion", "Spatial"]]
    first = dict(zip(calls[0][0], calls[0][2]))
    motion_prompt, spatial_prompt = calls[1][1]
    assert first["Subject"] in motion_prompt and first["Scene"] not in motion_prompt
    assert first["Subject"] in spatial_prompt and first["Scene"] in spatial_prompt
    assert motion_prompt.startswith(captioner.pack.texts["motion"])
    assert spatial_prompt.startswith(captioner.pack.texts["spatial"])


def test_critique_and_revise_keep_history(captioner, clip):
    caption = StructuredCaption.from_plain({"Camera": "The camera stays still at eye level."})
    critique = captioner.critique(clip, "camera", caption["Camera"].text)
    assert isinstance(critique, str) and critique
    before = caption["Camera"].text
    revised = captioner.revise(clip, "Camera", before, "Say that it pans left.", structured=caption)
    assert caption["Camera"].text == revised
    entry = caption["Camera"].history[-1]
    assert (entry.before, entry.critique, entry.after, entry.source) == (before, "Say that it pans left.", revised, "model")
    assert caption.undo("Camera") and caption["Camera"].text == before


def test_a_no_change_critique_leaves_the_caption_alone(captioner, clip):
    chai = "The caption is accurate and requires no edits, so it should remain exactly the same."
    caption = StructuredCaption.from_plain({"Camera": "Static shot."})
    for critique in (chai, chai + " The pan is described well.", f"“{chai}”", "No changes needed."):
        assert captioner.says_no_change(critique), critique
        assert captioner.revise(clip, "Camera", "Static shot.", critique, structured=caption) == "Static shot."
    assert caption["Camera"].history == []
    assert chai in captioner.pack.texts["critique"]  # the template asks for CHAI's sentence
    for text in ("Change the pan to a tilt.", "The caption is accurate but misses the tilt.",
                 "The caption needs changes: it is not static."):
        assert not captioner.says_no_change(text), text


def test_reward_is_a_probability_and_batches_consistently(captioner, clip):
    texts = ["The camera is static.", "A dog runs across a beach at sunset."]
    batch = captioner.rewards(clip, "Camera", texts)
    single = [captioner.reward(clip, "Camera", t) for t in texts]
    assert all(0.0 < p < 1.0 for p in batch)
    assert batch == pytest.approx(single, abs=1e-4)


def test_best_of_n_ranks_samples_by_reward(captioner, clip):
    ranked = captioner.best_of_n(clip, "Scene", n=3, seed=7)
    assert len(ranked) == 3
    scores = [s for _, s in ranked]
    assert scores == sorted(scores, reverse=True)
    best_text, best_score = ranked[0]
    assert captioner.reward(clip, "Scene", best_text if best_text.strip() else " ") == pytest.approx(best_score, abs=1e-4)
    with pytest.raises(InputError, match="n: must be a whole number"):
        captioner.best_of_n(clip, "Scene", n=0)


def test_merge_uses_the_model_and_falls_back_to_the_composer(tiny_captioner_dir):
    captioner = Captioner.from_pretrained(tiny_captioner_dir, device="cpu")
    caption = StructuredCaption.from_plain({"Subject": "A woman in a red coat.", "Camera": "The camera pans left."})
    merged = captioner.merge(caption, max_new_tokens=8)
    assert isinstance(merged, str) and merged
    # The word budget holds for the model's merge too (the tiny model rambles for 60 tokens).
    assert word_count(captioner.merge(caption, max_words=20, max_new_tokens=60)) <= 20
    captioner.unload()
    assert not captioner.loaded
    assert captioner.merge(caption) == compose(caption, ComposeOptions(max_words=260)).prompt
    with pytest.raises(StudioError, match="unloaded"):
        captioner.critique(None, "Camera", "text")  # refused before touching the clip
    with pytest.raises(InputError, match="every aspect is empty"):
        captioner.merge(StructuredCaption())


def test_shared_captioner_is_loaded_once_and_can_be_unloaded(tiny_captioner_dir):
    config = StudioConfig(captioner=str(tiny_captioner_dir), device="cpu")
    first = SharedModels(config).captioner()
    assert SharedModels(config).captioner() is first
    assert unload_captioner() and not first.loaded
    assert not unload_captioner()
    second = SharedModels(config).captioner()
    assert second is not first and second.loaded
    unload_captioner()


def test_caption_clip_records_provenance_and_warns_about_cuts(captioner, clips):
    config = StudioConfig(captioner="unused-because-passed-in", device="cpu")
    warnings = []
    caption = caption_clip(config, clips["cut"], captioner=captioner, on_warning=warnings.append)
    assert len(warnings) == 1 and "cut at 1.00 s" in warnings[0]
    assert caption.provenance.source == "captioner" and caption.provenance.models["captioner"] == captioner.model_id
    assert (caption.provenance.start, caption.provenance.end) == (0.0, 2.0)
    assert all(caption[a].text for a in ASPECTS)
    second = caption_clip(config, clips["cut"], shot=1, captioner=captioner, on_warning=warnings.append,
                          aspects=["Camera"])
    assert len(warnings) == 1  # one shot: no cut inside
    assert (second.provenance.start, second.provenance.end) == (1.0, 2.0)
    assert second["Camera"].text and not second["Subject"].text
    assert StructuredCaption.from_json(second.to_json()).provenance.start == 1.0


def test_loading_failures_name_the_setting(tmp_path):
    with pytest.raises(ModelLoadError, match="no such captioner folder.*CHAI_STUDIO_CAPTIONER or --captioner"):
        Captioner.from_pretrained(tmp_path / "missing")
    with pytest.raises(ModelLoadError, match="no config.json"):
        Captioner.from_pretrained(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "not-a-model"}')
    with pytest.raises(ModelLoadError, match="CHAI_STUDIO_CAPTIONER or --captioner"):
        Captioner.from_pretrained(broken)


def test_bad_task_inputs_are_refused(captioner, clip):
    with pytest.raises(InputError, match="unknown aspect"):
        captioner.caption(clip, ["Lighting"])
    with pytest.raises(InputError, match="caption: must be non-empty"):
        captioner.critique(clip, "Camera", "  ")
    with pytest.raises(InputError, match="expected a sampled clip"):
        captioner.caption(42)


def test_attention_choice_on_cpu():
    assert captioner_model._best_attention("cpu") == "sdpa"


def test_from_config_uses_the_tiny_checkpoint_in_tiny_mode(tiny_captioner_dir, clip):
    config = StudioConfig(tiny=True, tiny_dir=tiny_captioner_dir.parent, device="cpu", captioner="ignored/in-tiny-mode")
    captioner = Captioner.from_config(config)
    assert captioner.model_id == str(tiny_captioner_dir)
    assert captioner.model.dtype.is_floating_point and str(captioner.model.dtype) == "torch.float32"
    # Two-stage on its own: Motion still gets a Subject caption to lean on, written but not returned.
    assert list(captioner.caption(clip, ["Motion"], two_stage=True, max_new_tokens=4)) == ["Motion"]
    captioner.unload()


def test_a_merge_over_budget_is_cut_at_a_sentence_end():
    from studio.captioner.decoding import within_words

    text = "The camera cranes up slowly. A crowd gathers in the square below. Pigeons scatter."
    assert within_words(text, 100) == text
    assert within_words(text, 12) == "The camera cranes up slowly. A crowd gathers in the square below."
    assert within_words("one two three four five", 3) == "one two three"  # no sentence fits: cut words

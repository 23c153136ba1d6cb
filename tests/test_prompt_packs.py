"""The captioner prompted and fed as CHAI's model was trained and evaluated: prompt packs, the import
of CHAI's policy folder, the no-change sentinel, P(Yes) as t2v_metrics computes it, and
qwen-vl-utils' frame sizing. Built from the references' formats, on the tiny checkpoint."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clipmaker import write_clip
from studio.caption import StructuredCaption
from studio.captioner import Captioner, PromptPack, caption_clip
from studio.captioner.packs import DEFAULT_PACK, TINY_PACK, TEMPLATES
from studio.captioner.policy_import import import_policy
from studio.cli import main
from studio.config import StudioConfig
from studio.errors import InputError
from studio.session import Session
from studio.video import FrameSampling, sample_clip
from studio.video.sampling import smart_resize

ROOT = Path(__file__).resolve().parents[1]
CHAI_SENTINEL = "The caption is accurate and requires no edits, so it should remain exactly the same."


@pytest.fixture(scope="module")
def tiny_dir(tiny_models) -> Path:
    tiny_models("captioner")
    return tiny_models.root


@pytest.fixture(scope="module")
def captioner(tiny_dir):
    return Captioner.from_pretrained(tiny_dir / "captioner", device="cpu", pack=PromptPack.load(TINY_PACK))


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("pack-clips") / "plain.mp4", seconds=1.0)


def write_policy_folder(root: Path) -> Path:
    """A folder laid out as CHAI's caption_policy/policy is, with texts written here for the test."""
    texts = {
        "subject_description/policy.txt": "Describe the subjects: their kind and looks.\n",
        "subject_description/format_instruction.txt": "One paragraph, no lists.\n",
        "subject_description/has_shot_size_description.txt": "Shot size caption: **{shot_size_description}**\n",
        "scene_composition_dynamics/policy.txt": "Describe the place and time.\n",
        "scene_composition_dynamics/format_instruction.txt": "One paragraph about the setting.\n",
        "scene_composition_dynamics/has_pov_info.txt": "Point of view: **{pov_description}**\n",
        "subject_motion_dynamics/policy.txt": "Describe what the subjects do, in order.\n",
        "subject_motion_dynamics/has_subject_description.txt": "Earlier subject caption: **{subject_description}**\n",
        "spatial_framing_dynamics/policy.txt": "Describe the framing and the positions.\n",
        "spatial_framing_dynamics/has_subject_scene_description.txt":
            "Subjects: **{subject_description}**\nScenery: **{scene_description}**\n",
        "spatial_framing_dynamics/movement.txt": "When framing changes, give start and end.\n",
        "camera_framing_dynamics/policy.txt": "  Describe the camera: height, angle, focus, movement.\n\nSay static when static.\n",
        "lighting_setup_dynamics/policy.txt": "Describe the light.\n",
    }
    for name, text in texts.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


# -- the packs the studio ships ------------------------------------------------------------------

def test_the_shipped_packs_hold_every_template_and_the_sampling_of_their_models():
    default, tiny = PromptPack.load(), PromptPack.load(TINY_PACK)
    assert set(default.texts) == set(TEMPLATES) and default.texts == tiny.texts  # tiny: same words
    assert default.no_change[0] == CHAI_SENTINEL and CHAI_SENTINEL in default.texts["critique"]
    # The real model's pack samples as t2v_metrics feeds Qwen3-VL-8B: 8 fps, qwen-vl-utils sizing.
    assert (default.sampling.fps, default.sampling.resize, default.sampling.size_multiple) == (8.0, "qwen-vl-utils", 32)
    assert (default.sampling.min_frame_pixels, default.sampling.max_frame_pixels) == (128 * 32 * 32, 768 * 32 * 32)
    assert (tiny.sampling.fps, tiny.sampling.resize) == (2.0, "processor")
    assert default.sha256 != tiny.sha256 and len(default.sha256) == 64
    assert PromptPack.load().sha256 == default.sha256  # the hash is of the content: stable
    assert PromptPack.for_config(StudioConfig()).name == "studio-default"
    assert PromptPack.for_config(StudioConfig(tiny=True)).name == "studio-tiny"
    motion = default.instruction("Motion", {"Subject": "A woman in a red coat."})
    assert motion.startswith(default.texts["motion"]) and motion.endswith("Subject caption: A woman in a red coat.")
    assert default.instruction("Camera", {"Subject": "ignored"}) == default.texts["camera"]
    assert "{instruction}" not in default.render("critique", aspect="Camera", caption="c", instruction="I.")


@pytest.mark.parametrize("text, keep", [
    (CHAI_SENTINEL, True),
    (CHAI_SENTINEL + " The tilt is right.", True),
    ("  “The caption is accurate and requires no edits, so it should remain exactly the same”", True),
    ("**The caption is accurate and requires no edits, so it should remain exactly the same.**", True),
    ("No changes needed.", True),
    ("The caption is accurate and requires no edits except the pan.", False),
    ("The caption is accurate but misses the tilt.", False),
    ("Change the pan to a tilt.", False),
])
def test_chai_no_change_sentinel_means_keep(text, keep):
    assert PromptPack.load().says_no_change(text) is keep
    assert Session(StudioConfig()).needs_change(text) is not keep


def pack_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "pack"
    PromptPack.load().save(folder)
    return folder


@pytest.mark.parametrize("damage, message", [
    (lambda f: shutil.rmtree(f), "no such prompt pack folder"),
    (lambda f: (f / "pack.json").unlink(), "has no pack.json, so it is not a prompt pack"),
    (lambda f: (f / "pack.json").write_text("{oops"), "pack.json is not valid JSON"),
    (lambda f: (f / "pack.json").write_text('{"name": "x", "version": "1", "source": "s", "no_change": ["k"], '
                                            '"sampling": {"fps": 2}, "temperature": 1}'), "unknown key(s) temperature"),
    (lambda f: (f / "merge.txt").unlink(), "merge.txt is missing"),
    (lambda f: (f / "critique.txt").write_text("Critique it."), r"critique.txt must contain the placeholder(s) {aspect}"),
    (lambda f: (f / "motion_given_subject.txt").write_text("Given the subject."), "placeholder(s) {subject}"),
    (lambda f: (f / "camera.txt").write_bytes(b"\xff\xfe"), "camera.txt is not UTF-8 text"),
    (lambda f: (f / "pack.json").write_text('{"name": "x", "version": "1", "source": "s", "no_change": [], '
                                            '"sampling": {"fps": 2}}'), "no_change must be a list"),
    (lambda f: (f / "pack.json").write_text('{"name": "x", "version": "1", "source": "s", "no_change": ["k"], '
                                            '"sampling": {"fps": 90}}'), "sampling.fps: must be between 0 and 30"),
    (lambda f: (f / "pack.json").write_text('{"name": "x", "version": "1", "source": "s", "no_change": ["k"], '
                                            '"sampling": {"fps": 2, "resize": "stretch"}}'), "sampling.resize"),
    (lambda f: (f / "pack.json").write_text('{"name": "x", "version": "1", "source": "s", "base": ".", '
                                            '"no_change": ["k"]}'), "leads back to this pack"),
])
def test_a_bad_pack_is_refused_in_one_line_naming_the_file(tmp_path, damage, message):
    folder = pack_copy(tmp_path)
    damage(folder)
    with pytest.raises(InputError) as caught:
        PromptPack.load(folder)
    assert message in str(caught.value) and caught.value.field == "caption_prompts"
    assert "\n" not in str(caught.value)


def test_a_bad_pack_stops_the_command_before_any_model_loads(tmp_path, capsys, clip_file):
    folder = pack_copy(tmp_path)
    (folder / "reward.txt").unlink()
    code = main(["caption", str(clip_file), "--tiny", "--tiny-dir", str(tmp_path / "never-built"),
                 "--caption-prompts", str(folder)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"error: caption_prompts: {folder / 'reward.txt'} is missing; a prompt pack needs "
                                 "every one of " + ", ".join(n + ".txt" for n in TEMPLATES)]
    assert not (tmp_path / "never-built").exists()


# -- importing CHAI's policy folder ----------------------------------------------------------------

def test_import_builds_the_instructions_chai_pre_captions_were_prompted_with(tmp_path, capsys):
    policy = write_policy_folder(tmp_path / "caption_policy" / "policy")
    (policy / "camera_framing_dynamics" / "notes.md").write_text("mine")
    assert main(["prompts", "import", str(policy), "--out", str(tmp_path / "chai")]) == 0
    err = capsys.readouterr().err
    pack = PromptPack.load(tmp_path / "chai")
    camera_policy = (policy / "camera_framing_dynamics" / "policy.txt").read_text()
    assert pack.instruction("Camera") == camera_policy.strip()  # no format file: the policy alone
    subject = (policy / "subject_description" / "policy.txt").read_text().rstrip()
    assert pack.instruction("Subject") == subject + "\n\nOne paragraph, no lists."
    assert pack.instruction("Motion", {"Subject": "A man."}).endswith("Earlier subject caption: **A man.**")
    spatial = pack.instruction("Spatial", {"Subject": "A man.", "Scene": "A pier."})
    assert spatial.endswith("Subjects: **A man.**\nScenery: **A pier.**")
    # Templates the policy folder does not have come from the studio's pack, and so does sampling.
    studio = PromptPack.load()
    assert pack.texts["critique"] == studio.texts["critique"] and pack.sampling == studio.sampling
    assert pack.name == "chai-policy" and str(policy) in pack.source
    for line in ("skipped lighting_setup_dynamics/: a caption type the CHAI captioner was not trained on",
                 "skipped spatial_framing_dynamics/movement.txt: a paragraph added per clip from human labels",
                 f"ignored unknown file {policy / 'camera_framing_dynamics' / 'notes.md'}"):
        assert f"note: {line}" in err.splitlines()
    # The folder above policy/ is accepted too, and gives the same pack.
    again, _ = import_policy(tmp_path / "caption_policy", tmp_path / "again")
    assert again.sha256 == pack.sha256


@pytest.mark.parametrize("damage, message", [
    (lambda p: shutil.rmtree(p), "no such folder"),
    (lambda p: (p / "camera_framing_dynamics" / "policy.txt").unlink(), "camera_framing_dynamics/policy.txt is missing"),
    (lambda p: shutil.rmtree(p / "subject_motion_dynamics"), "subject_motion_dynamics is missing: the Motion policy"),
    (lambda p: (p / "subject_motion_dynamics" / "has_subject_description.txt").unlink(),
     "has_subject_description.txt is missing"),
    (lambda p: (p / "spatial_framing_dynamics" / "has_subject_scene_description.txt").write_text("No slots."),
     "has no {subject_description} placeholder"),
    (lambda p: (p / "scene_composition_dynamics" / "policy.txt").write_text("  \n"), "policy.txt is empty"),
])
def test_a_bad_policy_folder_gets_one_line_naming_the_file(tmp_path, capsys, damage, message):
    policy = write_policy_folder(tmp_path / "policy")
    damage(policy)
    assert main(["prompts", "import", str(policy), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: POLICY_DIR: ") and message in err[0]
    assert not (tmp_path / "out").exists()


def test_import_will_not_overwrite_a_folder_that_is_not_a_pack(tmp_path, capsys):
    policy = write_policy_folder(tmp_path / "policy")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("keep me")
    assert main(["prompts", "import", str(policy), "--out", str(tmp_path / "busy")]) == 2
    assert "is not an empty folder or a prompt pack" in capsys.readouterr().err
    assert (tmp_path / "busy" / "thesis.tex").read_text() == "keep me"


def test_prompts_show_prints_what_the_model_sees(tmp_path, capsys):
    assert main(["prompts", "show"]) == 0
    shown = capsys.readouterr().out
    default = PromptPack.load()
    assert shown.startswith(f"# {default.label()}") and default.texts["camera"] in shown
    assert "## Motion instruction (two-stage: given Subject)" in shown and "Subject caption: <the Subject caption>" in shown
    assert CHAI_SENTINEL in shown and "fps 8.0" in shown
    assert main(["prompts", "show", "--tiny"]) == 0 and "studio-tiny" in capsys.readouterr().out
    assert main(["prompts", "show", str(tmp_path)]) == 2
    assert "has no pack.json" in capsys.readouterr().err


def test_caption_with_an_imported_pack_records_the_exact_instructions(tmp_path, tiny_dir, clip_file):
    """The issue's check: Camera's instruction starts with the policy text verbatim, and Motion's
    holds the Subject caption written in the same run (two-stage is the default)."""
    policy = write_policy_folder(tmp_path / "policy")
    pack_dir = tmp_path / "chai"
    assert main(["prompts", "import", str(policy), "--out", str(pack_dir)]) == 0
    # The tiny captioner reads the imported words; its small frame budget keeps the check fast.
    pack = json.loads((pack_dir / "pack.json").read_text())
    pack["sampling"] = json.loads((TINY_PACK / "pack.json").read_text())["sampling"]
    (pack_dir / "pack.json").write_text(json.dumps(pack))
    out = tmp_path / "shot.json"
    assert main(["caption", str(clip_file), "--tiny", "--tiny-dir", str(tiny_dir), "--caption-prompts", str(pack_dir),
                 "--max-new-tokens", "6", "--out", str(out)]) == 0
    caption = StructuredCaption.load(out)
    used = PromptPack.load(pack_dir)
    assert caption.provenance.prompt_pack == used.manifest() and caption.provenance.prompt_pack["name"] == "chai-policy"
    camera_policy = (policy / "camera_framing_dynamics" / "policy.txt").read_text().strip()
    assert caption.provenance.instructions["Camera"].startswith(camera_policy)
    assert caption["Subject"].text and caption["Subject"].text in caption.provenance.instructions["Motion"]
    assert caption.provenance.instructions["Motion"].startswith(used.texts["motion"])
    assert set(caption.provenance.instructions) == set(caption.texts())
    # Read back from disk exactly.
    assert StructuredCaption.from_json(out.read_text()).provenance.instructions == caption.provenance.instructions


def test_critique_on_the_command_line_answers_needs_change_from_the_pack(tmp_path, tiny_dir, clip_file, capsys):
    """A pack whose no-change sentence is what the model says: `critique` then prints
    needs_change false, and `revise` keeps the text without a model call."""
    config = StudioConfig(tiny=True, tiny_dir=tiny_dir, device="cpu")
    session = Session(config)
    from studio.session import AspectRequest

    clip = session.clip(clip_file)
    text = "The camera stays at eye level."
    said = session.critique(AspectRequest.from_user(clip, session.limits, "Camera", text, max_new_tokens=6))
    folder = tmp_path / "pack"
    tiny = PromptPack.load(TINY_PACK)
    dataclasses.replace(tiny, no_change=(said,)).save(folder)
    caption_file = tmp_path / "c.json"
    StructuredCaption.from_plain({"Camera": text}).save(caption_file)
    common = [str(clip_file), "--caption", str(caption_file), "--aspect", "Camera", "--tiny", "--tiny-dir",
              str(tiny_dir), "--max-new-tokens", "6"]
    assert main(["critique", *common, "--caption-prompts", str(folder)]) == 0
    assert json.loads(capsys.readouterr().out) == {"Camera": {"critique": said, "needs_change": False}}
    assert main(["critique", *common]) == 0  # the tiny pack: that noise is not its no-change sentence
    assert json.loads(capsys.readouterr().out)["Camera"]["needs_change"] is True
    assert main(["revise", *common, "--critique", CHAI_SENTINEL + " Nothing else."]) == 0
    captured = capsys.readouterr()
    assert "Camera: the critique asks for no change; kept as it was" in captured.err
    assert json.loads(captured.out)["aspects"]["Camera"]["text"] == text


# -- reward: P(Yes) as t2v_metrics computes it -----------------------------------------------------

def test_reward_is_the_full_vocabulary_probability_of_yes(captioner, clip_file):
    import torch

    clip = sample_clip(clip_file, check_cuts=False, sampling=captioner.pack.sampling)
    captions = ["The camera is static.", "A slow dolly forward along a row of columns."]
    rewards = captioner.rewards(clip, "Camera", captions)
    tokenizer = captioner.processor.tokenizer
    yes = tokenizer.encode("Yes", add_special_tokens=False)[0]
    no = tokenizer.encode("No", add_special_tokens=False)[0]
    for caption, reward in zip(captions, rewards):  # by hand, one prompt at a time, in float64
        prompt = captioner.pack.render("reward", aspect="Camera", caption=caption)
        batch = captioner._encode(clip, [prompt])
        with torch.inference_mode():
            logits = captioner.model(**batch).logits[0, -1].double()
        probabilities = logits.exp() / logits.exp().sum()
        assert reward == pytest.approx(float(probabilities[yes]), rel=1e-4, abs=1e-7)
        # Not the two-token normalisation the studio used before: mass on other tokens counts.
        two_way = float(probabilities[yes] / (probabilities[yes] + probabilities[no]))
        assert abs(reward - two_way) > 1e-3


# -- sampling: qwen-vl-utils' sizing ---------------------------------------------------------------

def test_qwen_vl_utils_sizing_on_known_inputs():
    sampling = PromptPack.load().sampling
    # 1080p, 10 s at 8 fps: 80 frames, each capped at 768 tokens of 32x32 pixels (smart_resize by hand).
    assert sampling.frame_count(10.0) == 80
    assert sampling.frame_size(1920, 1080, 80) == (1152, 640)
    # A 60 s clip: 480 frames share the total cap of 32768 tokens (counted per two frames).
    assert sampling.frame_size(1920, 1080, 480) == (480, 256)
    # Small sources are enlarged to the 128-token floor; portrait stays portrait.
    assert sampling.frame_size(64, 48, 16) == (448, 320) and sampling.frame_size(48, 64, 16) == (320, 448)
    assert sampling.frame_count(0.3) == 4 and sampling.frame_count(2.1) == 16  # at least 4, always even
    assert smart_resize(1080, 1920, 32, 131072, 786432) == (640, 1152)
    with pytest.raises(InputError, match="resize: must be one of"):
        FrameSampling(resize="stretch")


def test_frames_sized_for_the_model_reach_it_unresized(tiny_dir, clip_file):
    """The default pack's frames are decoded at qwen-vl-utils' size and the processor is told not to
    resize: its patch grid is exactly the sampled frames' (T/2, H/16, W/16)."""
    captioner = Captioner.from_pretrained(tiny_dir / "captioner", device="cpu", pack=PromptPack.load(DEFAULT_PACK))
    clip = sample_clip(clip_file, check_cuts=False, sampling=captioner.pack.sampling)
    width, height = clip.size
    assert clip.sized_for_model and len(clip.frames) == 8 and (width, height) == (448, 320)
    batch = captioner._encode(clip, ["Describe the camera."])
    assert batch["video_grid_thw"].tolist() == [[4, height // 16, width // 16]]
    assert captioner.rewards(clip, "Camera", ["A static shot."])[0] > 0


def test_session_samples_as_its_pack_says(tmp_path, clip_file):
    default = Session(StudioConfig()).sample(Session(StudioConfig()).clip(clip_file))
    tiny = Session(StudioConfig(tiny=True)).sample(Session(StudioConfig(tiny=True)).clip(clip_file))
    assert (len(default.frames), default.size, default.sized_for_model) == (8, (448, 320), True)
    assert (len(tiny.frames), tiny.size, tiny.sized_for_model) == (2, (64, 48), False)
    assert Session(StudioConfig()).limits.caption_fps == 8.0


def test_caption_clip_records_the_pack_and_the_two_stage_instructions(captioner, clip_file):
    config = StudioConfig(tiny=True, device="cpu")
    caption = caption_clip(config, clip_file, captioner=captioner, two_stage=True, max_new_tokens=5)
    assert caption.provenance.prompt_pack == captioner.pack.manifest()
    instructions = caption.provenance.instructions
    assert instructions["Camera"] == captioner.pack.texts["camera"]
    assert caption["Subject"].text in instructions["Motion"] and caption["Scene"].text in instructions["Spatial"]
    one_pass = caption_clip(config, clip_file, captioner=captioner, two_stage=False, aspects=["Motion"],
                            max_new_tokens=5)
    assert one_pass.provenance.instructions == {"Motion": captioner.pack.texts["motion"]}


def test_a_caption_file_with_bad_provenance_is_refused():
    base = StructuredCaption.from_plain({"Camera": "A pan."}).to_dict()
    for bad, message in ((dict(prompt_pack=["x"]), "provenance.prompt_pack"),
                         (dict(instructions={"Lighting": "x"}), "unknown aspect 'Lighting'"),
                         (dict(instructions={"Camera": 3}), "provenance.instructions.Camera")):
        data = {**base, "provenance": {**base["provenance"], **bad}}
        with pytest.raises(InputError, match=message):
            StructuredCaption.from_dict(data)


def test_the_tiny_tokenizer_reads_the_packs_it_ships():
    """Tiny checkpoints train their tokenizer on every shipped pack text (a prompt a few hundred
    tokens long, as with a full-size tokenizer)."""
    code = ("from studio.tiny.captioner import _training_lines; from studio.captioner.packs import PromptPack;"
            "lines = set(_training_lines()); t = PromptPack.load().texts['camera'].splitlines()[0];"
            "print(t in lines)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.stdout.strip() == "True", result.stderr[-1000:]

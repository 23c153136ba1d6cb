"""Wan2.2's image conditioning without distortion: the output size follows the start image, and the
image is covered and centre-cropped (as the official Wan2.2 TI2V code frames it), never stretched."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from studio.config import StudioConfig
from studio.errors import InputError
from studio.session import GenerateRequest, Session
from studio.session.events import Done
from studio.video.framing import cover_crop, size_for_image

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "A woman in a red coat turns toward the camera in a narrow hallway."


@pytest.fixture(scope="module")
def tiny(tiny_models):
    return tiny_models("wan-ti2v", "finetuned-lora")


def gradient(width: int, height: int) -> Image.Image:
    """An image whose every pixel says where it came from (a crop or a stretch shows)."""
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], axis=-1).astype(np.uint8))


def expected_crop(source: Image.Image, width: int, height: int) -> np.ndarray:
    """Written out here on its own: scale to cover, then the centred box."""
    scale = max(width / source.width, height / source.height)
    scaled = source.resize((max(width, round(source.width * scale)), max(height, round(source.height * scale))),
                           Image.Resampling.BICUBIC)
    left, top = (scaled.width - width) // 2, (scaled.height - height) // 2
    return np.asarray(scaled.crop((left, top, left + width, top + height)))


def video_size(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.width, stream.height


@pytest.mark.parametrize("image, area, multiple, max_side, expected", [
    ((320, 480), 1280 * 704, 32, 1280, (768, 1152)),   # portrait 2:3 stays exactly 2:3
    ((1280, 704), 1280 * 704, 32, 1280, (1280, 704)),  # the preset's own shape is kept
    ((1920, 1080), 1280 * 704, 32, 1280, (1248, 704)),  # 16:9, the nearest in blocks of 32
    ((640, 480), 1280 * 704, 32, 1280, (1088, 800)),   # 4:3
    ((480, 1920), 1280 * 704, 32, 1280, (448, 1280)),  # 1:4: held to the longest side the model takes
    ((320, 480), 832 * 480, 16, 1280, (512, 768)),
])
def test_the_size_follows_the_image_at_the_preset_area(image, area, multiple, max_side, expected):
    width, height = size_for_image(*image, area=area, multiple=multiple, max_side=max_side)
    assert (width, height) == expected
    assert width % multiple == 0 and height % multiple == 0 and width * height <= area
    assert max(width, height) <= max_side


@pytest.mark.parametrize("image, message", [((0, 480), "has no pixels"), ((4000, 300), "aspect ratio beyond 8:1")])
def test_an_image_that_cannot_be_framed_is_refused_in_one_line(image, message):
    with pytest.raises(InputError, match=message) as caught:
        size_for_image(*image, area=1280 * 704, multiple=32, max_side=1280)
    assert caught.value.field == "image"


def test_cover_crop_scales_and_crops_the_centre_never_stretches():
    source = gradient(320, 480)
    for width, height in ((64, 64), (128, 64), (64, 128), (320, 480)):
        fitted = cover_crop(source, width, height)
        assert fitted.size == (width, height) and fitted.mode == "RGB"
        assert np.array_equal(np.asarray(fitted), expected_crop(source, width, height))
    stretched = np.asarray(source.resize((128, 64), Image.Resampling.BICUBIC)).astype(int)
    assert np.abs(np.asarray(cover_crop(source, 128, 64)).astype(int) - stretched).mean() > 10


def test_training_frames_are_framed_by_the_same_function():
    from studio.training.encoders import fit_frames

    frames = [gradient(320, 480), gradient(480, 320)]
    fitted = fit_frames(frames, 96, 64)
    assert fitted.shape == (2, 64, 96, 3)
    assert all(np.array_equal(fitted[i], np.asarray(cover_crop(f, 96, 64))) for i, f in enumerate(frames))


def test_a_portrait_image_on_a_default_size_run_gives_a_portrait_video(tiny, tmp_path):
    """No size asked for: the preset's 1280x704 area at the image's 2:3 aspect (held to the tiny
    transformer's longest side), and start_image.png is the centre cover-crop actually conditioned on."""
    source = tmp_path / "portrait.png"
    gradient(320, 480).save(source)
    config = StudioConfig(baseline=str(tiny["wan-ti2v"]), finetuned=str(tiny["finetuned-lora"]), device="cpu",
                          output_dir=tmp_path / "runs")
    session = Session(config)
    request = GenerateRequest.from_user(session.limits, PROMPT, "ti2v-5b", frames=5, steps=1, seed=3,
                                        mode="baseline", image=source)
    assert request.size_follows_image and (request.settings.width, request.settings.height) == (1280, 704)
    result = next(e for e in session.generate(request) if isinstance(e, Done)).result
    width, height = video_size(result.run_dir / "baseline.mp4")
    assert height > width and (width, height) == (768, 1024) and width % 32 == 0 and height % 32 == 0
    record = json.loads((result.run_dir / "run.json").read_text())
    assert (record["settings"]["width"], record["settings"]["height"]) == (768, 1024)
    assert record["image"]["fit"] == "cover-crop" and record["image"]["source_size"] == [320, 480]
    written = np.asarray(Image.open(result.run_dir / "start_image.png").convert("RGB"))
    assert np.array_equal(written, expected_crop(Image.open(source).convert("RGB"), 768, 1024))


def test_an_explicit_size_is_kept_and_the_image_cropped_to_it(tiny, tmp_path):
    source = tmp_path / "four_three.png"
    gradient(400, 300).save(source)
    result = subprocess.run(
        [sys.executable, "-m", "studio", "generate", "--prompt", PROMPT, "--baseline", str(tiny["wan-ti2v"]),
         "--finetuned", str(tiny["finetuned-lora"]), "--device", "cpu", "--frames", "5", "--steps", "1",
         "--width", "64", "--height", "128", "--image", str(source), "--out", str(tmp_path / "runs")],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    assert video_size(run_dir / "finetuned.mp4") == (64, 128)
    written = np.asarray(Image.open(run_dir / "start_image.png").convert("RGB"))
    assert np.array_equal(written, expected_crop(Image.open(source).convert("RGB"), 64, 128))
    # Reproduced from the run: the same size, the same (already framed) image.
    again = subprocess.run([sys.executable, "-m", "studio", "generate", "--from-run", str(run_dir), "--device", "cpu",
                            "--out", str(tmp_path / "again")], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    rerun = Path(again.stdout.strip().splitlines()[-1])
    assert np.array_equal(np.asarray(Image.open(rerun / "start_image.png").convert("RGB")), written)
    assert video_size(rerun / "finetuned.mp4") == (64, 128)


def test_a_bad_start_image_gets_one_line(tiny, tmp_path):
    thin = tmp_path / "thin.png"
    gradient(900, 60).save(thin)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    common = [sys.executable, "-m", "studio", "generate", "--prompt", PROMPT, "--baseline", str(tiny["wan-ti2v"]),
              "--device", "cpu", "--frames", "5", "--steps", "1", "--mode", "baseline", "--out", str(tmp_path / "r")]
    for image, message in ((thin, "an aspect ratio beyond 8:1"), (broken, "is not an image")):
        result = subprocess.run(common + ["--image", str(image)], capture_output=True, text=True, cwd=ROOT,
                                timeout=300)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and lines[-1].startswith("error: image: ") and message in lines[-1], lines


def test_the_default_negative_prompt_covers_wan22s_own():
    """Wan2.2's default negative prompt (sampled with by the released models) pushes against static,
    still frames as much as against artefacts; the studio's default covers the same ground."""
    from studio.generation.presets import DEFAULT_NEGATIVE_PROMPT
    from studio.generation.settings import GenerationSettings
    from studio.generation.presets import get_preset

    text = DEFAULT_NEGATIVE_PROMPT.lower()
    for item in ("over-saturated", "overexposed", "static", "still frame", "motionless", "blurry", "subtitles",
                 "worst quality", "low quality", "jpeg", "extra fingers", "fused fingers", "poorly drawn hands",
                 "poorly drawn face", "deformed", "disfigured", "malformed limbs", "three legs",
                 "cluttered background", "many people in the background", "walking backwards"):
        assert item in text, item
    assert GenerationSettings.from_user(get_preset("ti2v-5b")).negative_prompt == DEFAULT_NEGATIVE_PROMPT


def test_the_page_resolution_that_follows_the_start_image(tmp_path):
    from studio.generation.presets import get_preset
    from studio.session import Limits
    from studio.ui.sections.generate import resolution_choices

    assert ("Follow the start image (its aspect, the preset's area)", "auto") in resolution_choices(get_preset("ti2v-5b"))
    assert all(isinstance(c, str) for c in resolution_choices(get_preset("t2v-a14b")))  # text-only: no such choice
    limits = Limits.from_config(StudioConfig())
    image = tmp_path / "start.png"
    gradient(320, 480).save(image)
    follows = GenerateRequest.from_user(limits, PROMPT, "ti2v-5b", resolution="auto", image=image)
    assert follows.size_follows_image and (follows.settings.width, follows.settings.height) == (1280, 704)
    assert not GenerateRequest.from_user(limits, PROMPT, "ti2v-5b", resolution="auto").size_follows_image
    assert not GenerateRequest.from_user(limits, PROMPT, "ti2v-5b", resolution="960x544", image=image).size_follows_image

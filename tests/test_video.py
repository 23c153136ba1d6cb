"""Clip intake: probing, refusing bad files clearly, shot detection, sampling and first frames."""

from __future__ import annotations

import math

import numpy as np
import pytest
from clipmaker import truncate, write_audio_only, write_clip, write_zero_frames

from studio.errors import InputError
from studio.video import MAX_FRAME_PIXELS, detect_shots, first_frame, probe, sample_clip
from studio.video.sampling import _plan_seeks, sample_times


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("video-media")
    return {
        "plain": write_clip(root / "plain.mp4", seconds=2.0),
        "cut": write_clip(root / "cut.mp4", seconds=2.0, cut_at=1.0),
        "portrait": write_clip(root / "portrait.mp4", seconds=1.0, rotation=90),
        "big": write_clip(root / "big.mp4", seconds=0.25, width=1920, height=1080, fps=24),
        "fast": write_clip(root / "fast.mp4", seconds=2.0, faststart=True),
        "root": root,
    }


def _mean_colour(image):
    array = np.asarray(image).astype(float)
    h, w = array.shape[:2]
    return array[h // 2:, w // 2:].reshape(-1, 3).mean(0)  # away from the counter patch


def test_probe_reads_duration_rate_size_and_streams(media):
    info = probe(media["plain"], max_seconds=60)
    assert math.isclose(info.duration, 2.0, abs_tol=0.05)
    assert info.fps == pytest.approx(24)
    assert (info.width, info.height, info.rotation) == (64, 48, 0)
    assert info.streams == ("video:h264",) and not info.has_audio
    assert info.frame_count == 48
    assert info.keyframe_interval == pytest.approx(0.5, abs=0.05)  # gop 12 at 24 fps


def test_rotation_metadata_gives_display_orientation(media):
    info = probe(media["portrait"])
    assert info.rotation == 90
    assert (info.coded_width, info.coded_height) == (64, 48)
    assert (info.width, info.height) == (48, 64)
    clip = sample_clip(media["portrait"], check_cuts=False)
    assert clip.size == (48, 64)
    assert first_frame(media["portrait"]).size == (48, 64)


@pytest.mark.parametrize("maker, message", [
    (lambda root: (root / "notes.mp4").write_text("a shot list, not a video\n" * 30) and root / "notes.mp4",
     "not a readable video"),
    (lambda root: write_audio_only(root / "voice.mp4"), "no video stream (only audio"),
    (lambda root: write_zero_frames(root / "empty.avi"), "no frames"),
    (lambda root: (root / "zero.mp4").write_bytes(b"") or root / "zero.mp4", "empty (0 bytes)"),
    (lambda root: root / "missing.mp4", "no such file"),
    (lambda root: root, "is not a file"),
])
def test_bad_files_are_refused_with_a_clear_message(media, maker, message):
    path = maker(media["root"])
    with pytest.raises(InputError, match="clip: ") as excinfo:
        probe(path)
    assert message in str(excinfo.value)


def test_truncated_files_are_refused(media):
    root = media["root"]
    # moov at the end: the index is lost with the tail.
    with pytest.raises(InputError, match="truncated or corrupt"):
        probe(truncate(media["plain"], root / "cut-tail.mp4", keep=0.6))
    # moov at the front (faststart): the index points past the end of the file.
    with pytest.raises(InputError, match="truncated: its index points past the end"):
        probe(truncate(media["fast"], root / "cut-fast.mp4", keep=0.6))


def test_too_long_clip_asks_to_trim_and_names_the_setting(media):
    with pytest.raises(InputError) as excinfo:
        probe(media["plain"], max_seconds=1.5)
    text = str(excinfo.value)
    assert "2.0 s long; the limit is 1.5 s" in text and "Trim" in text and "CHAI_STUDIO_MAX_CLIP_SECONDS" in text


def test_huge_resolution_is_downscaled_not_refused(media):
    info = probe(media["big"])
    assert (info.width, info.height) == (1920, 1080)
    clip = sample_clip(media["big"], check_cuts=False)
    width, height = clip.size
    assert width * height <= MAX_FRAME_PIXELS
    assert width / height == pytest.approx(16 / 9, rel=0.02)
    small = sample_clip(media["big"], check_cuts=False, max_pixels=20_000)
    assert small.size[0] * small.size[1] * len(small.frames) <= 20_000 * 1.05


def test_shot_detection_finds_the_cut(media):
    shots = detect_shots(media["cut"])
    assert [s.index for s in shots] == [0, 1]
    assert shots[0].start == 0 and shots[1].start == pytest.approx(1.0, abs=0.05)
    assert shots[-1].end == pytest.approx(2.0, abs=0.05)
    assert len(detect_shots(media["plain"])) == 1


@pytest.mark.parametrize("flash_frames", [1, 2])
def test_a_flash_cut_at_the_end_is_no_shot_of_its_own(media, flash_frames):
    """One second, then a 1-2 frame flash of another colour as the clip ends: PySceneDetect calls
    the flash a shot (gradio's a.mp4 had a 0.03 s shot 2); it joins the shot before it."""
    from studio.video.intake import MIN_SHOT_SECONDS, _detect_cached

    fps = 24
    clip = write_clip(media["root"] / f"flash{flash_frames}.mp4", seconds=(fps + flash_frames) / fps, fps=fps,
                      cut_at=1.0)
    info = probe(clip)
    raw = _detect_cached.__wrapped__(str(clip), 0, 0, 27.0, 0.0, info.fps, info.duration)
    assert len(raw) == 2 and raw[1].duration < 0.1  # the detector alone keeps the flash as a shot
    shots = detect_shots(clip)
    assert len(shots) == 1 and shots[0].start == 0.0
    assert shots[0].end == pytest.approx((fps + flash_frames) / fps, abs=0.01)
    assert all(s.duration >= MIN_SHOT_SECONDS for s in shots)


def test_short_shots_merge_into_their_neighbour():
    from studio.video.intake import MIN_SHOT_SECONDS, Shot, merge_short_shots

    assert MIN_SHOT_SECONDS == 0.5
    spans = lambda shots: [(s.index, s.start, s.end) for s in shots]  # noqa: E731
    shots = [Shot(0, 0.0, 0.04), Shot(1, 0.04, 2.0), Shot(2, 2.0, 2.08), Shot(3, 2.08, 4.0), Shot(4, 4.0, 4.03)]
    # the opening flash joins the shot after it; the others join the shot before them
    assert spans(merge_short_shots(shots)) == [(0, 0.0, 2.08), (1, 2.08, 4.03)]
    assert spans(merge_short_shots([Shot(0, 0.0, 0.2), Shot(1, 0.2, 0.3)])) == [(0, 0.0, 0.3)]  # all short: one
    whole = [Shot(0, 0.0, 1.0), Shot(1, 1.0, 2.0)]
    assert merge_short_shots(whole) == whole


def test_sampling_rate_range_and_timestamps(media):
    clip = sample_clip(media["plain"], fps=2.0, check_cuts=False)
    assert len(clip.frames) == 4 and clip.fps == pytest.approx(2.0)
    assert clip.timestamps == pytest.approx([0.0, 0.5, 1.0, 1.5])
    assert len({f.size for f in clip.frames}) == 1 and clip.as_array().shape == (4, 48, 64, 3)
    part = sample_clip(media["plain"], start=0.5, end=1.5, fps=4.0, check_cuts=False)
    assert part.start == 0.5 and part.end == 1.5 and len(part.frames) == 4
    assert all(0.5 <= t < 1.5 for t in part.timestamps)


def test_sampled_frames_come_from_the_right_times(media):
    # The corner patch counts frames (5 grey levels per frame): each sample must show the frame
    # displayed at its timestamp, whichever way the decoder got there.
    expected = [min(round(t * 24), 47) * 5 % 256 for t in sample_times(0.0, 2.0, 12)]
    for strategy in ("auto", "seek", "sequential"):
        clip = sample_clip(media["plain"], fps=6.0, check_cuts=False, strategy=strategy)
        counters = [float(np.asarray(f)[2:8, 2:8].mean()) for f in clip.frames]
        assert counters == pytest.approx(expected, abs=2), strategy  # one frame = 5 levels


def test_cut_inside_range_warns_and_single_shot_does_not(media):
    whole = sample_clip(media["cut"])
    assert len(whole.warnings) == 1 and "contains a cut at 1.00 s" in whole.warnings[0]
    assert "single shots" in whole.warnings[0]
    first = sample_clip(media["cut"], start=0.0, end=1.0)
    assert first.warnings == []
    red, blue = _mean_colour(whole.frames[0]), _mean_colour(whole.frames[-1])
    assert red[0] > red[2] + 100 and blue[2] > blue[0] + 100


@pytest.mark.parametrize("kwargs, field", [
    (dict(start=-1.0), "start"), (dict(start=5.0), "start"), (dict(start=1.0, end=0.5), "end"),
    (dict(fps=0), "fps"), (dict(fps=120), "fps"), (dict(max_pixels=10), "max_pixels"),
])
def test_bad_ranges_and_settings_name_the_field(media, kwargs, field):
    with pytest.raises(InputError) as excinfo:
        sample_clip(media["plain"], check_cuts=False, **kwargs)
    assert excinfo.value.field == field


def test_first_frame_at_a_time(media):
    assert first_frame(media["cut"]).size == (64, 48)
    assert _mean_colour(first_frame(media["cut"], at=0.0))[0] > 150
    assert _mean_colour(first_frame(media["cut"], at=1.5))[2] > 150
    with pytest.raises(InputError, match="between 0 and"):
        first_frame(media["cut"], at=9.0)


def test_seek_plan_follows_keyframe_spacing():
    samples = [i * 0.5 + 0.1 for i in range(20)]  # 2 fps over 10 s, 30 fps source
    dense_keys = tuple(float(i) for i in range(10))  # a keyframe every second
    plan = _plan_seeks(samples, dense_keys, 1 / 30)
    assert plan[0] and sum(plan) == 10  # a seek at each keyframe the samples cross, else decode on
    sparse_keys = (0.0, 10.0)
    assert _plan_seeks(samples, sparse_keys, 1 / 30) == [True] + [False] * 19


def test_a_stream_that_ends_early_is_sampled_with_a_warning(media):
    # Matroska writes its duration up front, so a cut-off file still claims its full length.
    whole = write_clip(media["root"] / "long.mkv", seconds=4.0)
    cut_off = truncate(whole, media["root"] / "cut-off.mkv", keep=0.5)
    assert probe(cut_off).duration == pytest.approx(4.0, abs=0.05)
    clip = sample_clip(cut_off, check_cuts=False)
    assert len(clip.frames) == 8
    assert len(clip.warnings) == 1 and "may be truncated" in clip.warnings[0]
    assert sample_clip(whole, check_cuts=False).warnings == []

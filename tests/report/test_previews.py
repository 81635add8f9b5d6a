"""Thumbnails from the pixels prepare had (issue 15: "made from the decoded data the run already
has where possible, not by decoding every input again"): what prepare(preview=True) keeps for
each kind of input, and how a run keeps the thumbnails made from them, which the files cannot
give back byte for byte (a lossy encode's pixels, the probe's frame of a video)."""

from __future__ import annotations

import json
from pathlib import Path, PurePath

import numpy as np
from click.testing import CliRunner
from PIL import Image

import mediaprep
from mediaprep.backends.pillow import PREVIEW_MAX_FRAMES, PREVIEW_SIDE, preview_sample
from mediaprep.cli import main
from tests.videogen import make_video


def run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_what_prepare_keeps_previews_of(tmp_path: Path) -> None:
    out = tmp_path / "out"
    big = Image.effect_noise((5000, 3000), 60).convert("RGB")
    big.save(tmp_path / "big.png")  # re-encoded (too many pixels for the target): lossy
    clip = make_video(tmp_path / "clip.mp4", n_frames=80, fps=20, width=320, height=240)
    short = make_video(tmp_path / "short.mp4", n_frames=10, fps=10, width=160, height=120)

    image = mediaprep.prepare(tmp_path / "big.png", out_dir=out, stem=PurePath("big"),
                              preview=True)
    assert image.ok and image.outputs[0].suffix in (".jpg", ".webp", ".png")
    assert max(image.preview.size) == PREVIEW_SIDE
    assert abs(image.preview.size[0] / image.preview.size[1] - 5 / 3) < 0.02

    video = mediaprep.prepare(clip, out_dir=out, stem=PurePath("clip"), preview=True)
    assert video.ok and "transcoded" not in video.change_kinds() and len(video.outputs) == 1
    assert set(video.previews) == {0, "input"}  # the probe's first frame, copied as it is
    assert video.previews[0].size == (256, 192)

    frames = mediaprep.prepare(short, out_dir=out, stem=PurePath("short"), preview=True)
    assert frames.ok and "sent as frames" in frames.change_kinds()
    assert sorted(k for k in frames.previews if isinstance(k, int)) == list(
        range(len(frames.outputs)))
    # without preview=True nothing is kept
    assert mediaprep.prepare(clip, out_dir=out, stem=PurePath("c2")).previews == {}


def test_a_video_sent_as_many_frames_keeps_previews_of_the_sheets_sample_only(
        tmp_path: Path) -> None:
    clip = make_video(tmp_path / "long.mp4", n_frames=200, fps=20, width=160, height=120)
    r = mediaprep.prepare(clip, out_dir=tmp_path / "out", stem=PurePath("long"), preview=True,
                          video_mode="frames", fps=10, max_frames=100)
    assert r.ok and len(r.outputs) == 100
    assert set(r.previews) == set(preview_sample(100))
    assert len(r.previews) == PREVIEW_MAX_FRAMES


def _thumb_bytes(out: Path) -> dict[str, bytes]:
    folder = out / "report_files"
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.jpg"))}


def test_a_run_keeps_the_thumbnails_only_prepare_could_make(tmp_path: Path) -> None:
    """The journal lists each input's thumbnails: one gone means that input is prepared again
    (the file alone would give other bytes); the cache carries them to another DIR."""
    media = tmp_path / "in"
    media.mkdir()
    Image.effect_noise((4000, 3000), 60).convert("RGB").save(media / "noise.png")
    make_video(media / "clip.mp4", n_frames=80, fps=20, width=320, height=240)
    cache, one, two = tmp_path / "cache", tmp_path / "one", tmp_path / "two"
    assert run("prep", media, "-o", one, "--cache-dir", cache, "-q", "-j", "0").exit_code == 0
    first = _thumb_bytes(one)
    assert len(first) >= 3
    meta = [json.loads(p.read_text().splitlines()[0])
            for p in (one / ".mediaprep" / "journal").glob("*.json")]
    assert all(m["thumbs"] for m in meta)

    gone = next(iter(first))
    (one / "report_files" / gone).unlink()
    r = run("prep", media, "-o", one, "--no-cache", "-j", "0", "--format", "json")
    assert r.exit_code == 0
    origins = sorted(x["origin"] for x in json.loads(r.stdout)["results"])
    assert origins == ["journal", "prepared"]  # only the input whose thumbnail went
    assert _thumb_bytes(one) == first

    assert run("prep", media, "-o", two, "--cache-dir", cache, "-q", "-j", "0").exit_code == 0
    assert _thumb_bytes(two) == first


def test_a_preview_that_cannot_be_made_is_none_and_never_fails_the_input() -> None:
    from mediaprep.backends.pillow import preview_or_none

    # Pillow cannot convert premultiplied "La" to anything preview_image needs
    assert preview_or_none(Image.new("La", (40, 30))) is None
    assert preview_or_none(Image.new("RGB", (40, 30))).size == (40, 30)
    r = mediaprep.prepare(Image.new("La", (400, 300)), preview=True)
    assert r.ok  # encoded from a mode it can send; its preview then comes from those pixels


def test_a_turned_image_keeps_its_inputs_picture_as_stored(tmp_path: Path) -> None:
    """A photo turned by its EXIF orientation: the report's input thumbnail (the picture as
    stored) comes from the pixels prepare decoded, not from decoding the input again, and is
    the same picture the file gives at 256 px."""
    from mediaprep.backends.pillow import file_preview

    src = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    photo = Image.radial_gradient("L").resize((1600, 1000)).convert("RGB")
    photo.save(src, quality=90, exif=exif)
    r = mediaprep.prepare(src, out_dir=tmp_path / "out", preview=True)
    assert r.ok and "rotated" in r.change_kinds()
    assert r.previews["input"].size == (256, 160)  # as stored: landscape
    assert r.previews[0].size == (160, 256)  # as sent: upright
    stored = file_preview(src)
    diff = np.abs(np.asarray(r.previews["input"], np.int16) - np.asarray(stored, np.int16))
    assert diff.mean() < 2.0
    # the run's page shows it: a landscape input beside the upright output
    out = tmp_path / "run"
    assert run("prep", src, "-o", out, "-q", "-j", "0", "--no-cache").exit_code == 0
    sizes = sorted(Image.open(p).size for p in (out / "report_files").glob("*.jpg"))
    assert sizes == [(160, 256), (256, 160)]


def test_a_large_pictures_preview_is_the_same_picture_as_a_careful_shrink() -> None:
    """A 40 MP picture's preview is box-reduced in two steps (half the time of one box of 31
    px a side): still the picture a careful Lanczos shrink gives (closer to it than the one
    box was: mean difference 1.21 against 1.62 on these hard edges), blocks' insides exact."""
    from mediaprep.backends.pillow import preview_image

    rng = np.random.default_rng(5)
    low = Image.fromarray(rng.integers(0, 256, (10, 16, 3), dtype=np.uint8))
    big = low.resize((8000, 5000), Image.Resampling.NEAREST)  # blocks of 500 px: hard edges
    small = preview_image(big)
    assert small.size == (256, 160)
    careful = big.resize((256, 160), Image.Resampling.LANCZOS)
    diff = np.abs(np.asarray(small, np.int16) - np.asarray(careful, np.int16))
    assert diff.mean() < 1.4
    # inside each block (away from its edges) the colour is exact
    assert (diff.reshape(10, 16, 16, 16, 3)[:, 4:12, :, 4:12] == 0).all()

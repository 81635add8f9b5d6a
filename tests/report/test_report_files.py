"""The report keeps its pictures where a copy or a CI artifact keeps them, goes where it is
asked, and its page says what it shows (issue 27, item 5). Through the CLI, pages read in
headless Chromium where layout matters."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import unquote

from PIL import Image

from mediaprep.report import render
from mediaprep.report.html import write_prep_report
from tests.report.test_html import EXAMPLES, NAMES, browse, parse, row_of, run


def prep_examples(tmp_path: Path, *extra: object) -> Path:
    out = tmp_path / "out"
    res = run("prep", EXAMPLES, "-o", out, "--no-cache", "-q", *extra)
    assert res.exit_code == 0, res.output
    return out


def test_prep_page_copied_alone_shows_every_picture(tmp_path: Path) -> None:
    out = prep_examples(tmp_path)
    assert (out / "report_files").is_dir()  # visible: artifact uploads keep it
    assert not (out / ".mediaprep" / "thumbs").exists()
    alone = tmp_path / "elsewhere" / "report.html"
    alone.parent.mkdir()
    shutil.copyfile(out / "report.html", alone)
    page = parse(browse(alone, "--dump-dom").stdout)
    assert sorted(Path(r["name"]).name for r in page.rows) == NAMES
    for r in page.rows:
        assert r["imgs"], r["name"]
        assert all(i["src"].startswith("data:image/jpeg;base64,") for i in r["imgs"])
    shot = tmp_path / "narrow.png"  # a phone's width: the page still draws its pictures
    browse(alone, f"--screenshot={shot}", "--window-size=390,900")
    with Image.open(shot) as im:
        assert len(im.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 200


def test_past_the_inline_cap_pictures_are_linked_from_the_page(tmp_path: Path) -> None:
    out = prep_examples(tmp_path)
    for page in (out / "report.html", tmp_path / "pages" / "run.html"):
        page.parent.mkdir(exist_ok=True)
        write_prep_report(out, page=page, inline_max=0)
        text = page.read_text()
        srcs = re.findall(r'<img [^>]*src="([^"]+)"', text)
        assert srcs and not any(s.startswith("data:") for s in srcs)
        for src in srcs:  # relative to the page, into the visible folder
            assert "/.mediaprep/" not in src and "report_files/" in src
            assert (page.parent / unquote(src)).resolve().is_file(), src
        assert "beside this page" in text  # the page says to keep the folder with it


def test_report_option_writes_the_page_there(tmp_path: Path) -> None:
    page = tmp_path / "site" / "prep.html"
    page.parent.mkdir()
    out = prep_examples(tmp_path, "--report", page)
    assert page.is_file() and not (out / "report.html").exists()
    rows = parse(page.read_text()).rows
    assert sorted(Path(r["name"]).name for r in rows) == NAMES
    assert all(i["src"].startswith("data:") for r in rows for i in r["imgs"])


def test_report_option_never_overwrites_an_input_or_the_run_s_files(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(EXAMPLES / "icon.gif", src / "icon.gif")
    before = (src / "icon.gif").read_bytes()
    out = tmp_path / "out"
    for dest, why in ((src / "icon.gif", "is an input"),
                      (out / "parts.jsonl", "the parts file"),
                      (out / "report_files", "a name mediaprep keeps")):
        res = run("prep", src, "-o", out, "--no-cache", "-q", "--report", dest)
        assert res.exit_code == 2 and why in res.output, res.output
        assert "Traceback" not in res.output
    assert (src / "icon.gif").read_bytes() == before


def test_check_html_goes_to_a_file_not_stdout(tmp_path: Path) -> None:
    page = tmp_path / "check.html"
    res = run("check", EXAMPLES, "--format", "html", "-o", page, "-q")
    assert res.exit_code == 1  # the examples need prep
    assert "<html" not in res.stdout and str(page) in res.stderr
    dom = parse(browse(page, "--dump-dom").stdout)
    assert sorted(Path(r["name"]).name for r in dom.rows) == NAMES
    victim = tmp_path / "a.gif"
    shutil.copy(EXAMPLES / "icon.gif", victim)
    res = run("check", victim, "--format", "html", "-o", victim, "-q")
    assert res.exit_code == 2 and "one of the files checked" in res.output
    assert victim.read_bytes() == (EXAMPLES / "icon.gif").read_bytes()


def test_check_header_counts_the_statuses_the_tabs_count(tmp_path: Path) -> None:
    def entry(name: str, *findings: tuple[str, str]) -> dict:
        return {"path": str(tmp_path / name), "kind": "image", "ok": True,
                "findings": [{"code": c, "severity": s, "message": c} for c, s in findings]}

    report = {"target": "dashscope", "files": [
        entry("a.jpg"), entry("b.jpg"), entry("c.jpg", ("image.animated", "warning")),
        {**entry("d.jpg", ("file.unreadable", "error")), "ok": False}],
        "summary": {"files": 4, "passed": 3, "failed": 1, "errors": 1, "warnings": 1}}
    text = render(report, "html")
    totals = dict((k, int(v)) for v, k in re.findall(
        r'<div class="total"><b>([\d,]+)</b><span>([^<]+)</span>', text))
    tabs = dict((k, int(v)) for k, v in re.findall(
        r'<button type="button" data-want="\w+" aria-pressed="\w+">(\w+) (\d+)</button>', text))
    assert tabs == {"all": 4, "passed": 2, "warning": 1, "failed": 1}
    for status in ("passed", "warning", "failed"):
        assert totals[status] == tabs[status], (totals, tabs)


MEASURE = """<script>
document.querySelectorAll('article.row').forEach(function(r){
  var pics=r.querySelector('.pics');r.setAttribute('data-pics-width',pics.offsetWidth);
  r.setAttribute('data-height',r.offsetHeight)});
document.body.setAttribute('data-overflow',
  document.documentElement.scrollWidth>document.documentElement.clientWidth);
</script></body>"""


def test_failed_cards_are_not_a_wide_placeholder_and_names_wrap_between_words(
        tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(EXAMPLES / "icon.gif", src / "an_ordinary_picture.gif")
    (src / "a_picture_with_a_long_descriptive_name_that_must_wrap.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    out = tmp_path / "out"
    assert run("prep", src, "-o", out, "--no-cache", "-q").exit_code == 1
    text = (out / "report.html").read_text()
    assert "break-all" not in text and "overflow-wrap:anywhere" in text
    # the name may wrap after its separators, and reads whole
    assert "a_<wbr>long_<wbr>descriptive_<wbr>name_<wbr>that" in text
    assert any(r["name"].endswith("a_picture_with_a_long_descriptive_name_that_must_wrap.png")
               for r in parse(text).rows)
    measured = tmp_path / "measured.html"
    measured.write_text(text.replace("</body>", MEASURE, 1))
    dom = browse(measured, "--dump-dom", "--window-size=1280,900").stdout
    widths = dict(re.findall(r'data-status="(\w+)"[^>]*data-pics-width="(\d+)"', dom))
    assert int(widths["failed"]) <= 160 < int(widths["changed"]), widths
    assert 'data-overflow="false"' in dom
    phone = browse(measured, "--dump-dom", "--window-size=390,900").stdout
    assert 'data-overflow="false"' in phone  # nothing wider than a phone's screen


def test_a_video_file_s_strip_says_it_is_a_preview(tmp_path: Path) -> None:
    out = prep_examples(tmp_path)
    video = row_of(parse((out / "report.html").read_text()), "clip.ts")
    assert "sent as a video file, sampled by the server at fps 2 · max_frames 2000" in \
        video["text"]
    assert "3 frames spread over the file, a preview here" in video["text"]
    assert "3.00 s" in video["text"]


def test_report_option_makes_no_folder_of_its_own(tmp_path):
    """mediaprep creates no folder it does not own: --report into a missing folder is refused."""
    from click.testing import CliRunner
    from PIL import Image

    from mediaprep.cli import main

    src = tmp_path / "in"
    src.mkdir()
    Image.new("RGB", (40, 30)).save(src / "a.png")
    r = CliRunner().invoke(main, ["prep", str(src), "-o", str(tmp_path / "out"), "--no-cache",
                                  "-j", "0", "--report", str(tmp_path / "nope" / "r.html")])
    assert r.exit_code == 2 and "does not exist" in r.output
    assert not (tmp_path / "nope").exists()

"""The HTML of the report's page: one card per input (:class:`~mediaprep.report.rows.Row`), the
header with the totals, the status tabs and the name filter.

A page of up to :data:`PAGE_ROWS` inputs holds every card. Past that the page holds the first
:data:`PAGE_ROWS` (failed inputs first) and the rest are in ``report_files/rows-NNNNNN.js``, files
of :data:`CHUNK_ROWS` cards each, which the page loads with ``<script src>`` as the reader
scrolls (a ``file://`` page may not ``fetch()``, but may load a script beside it). A filter
(status tab, name) walks the files in order and keeps only the cards it matches, so the page
holds what is shown, never the whole run: it opens as fast at 10^6 inputs as at 10^3.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from . import code_of, displayable, message_of, severity_of
from .changes import KINDS
from .rows import Row, strip_name
from .thumbs import Pic

#: cards on the page itself; past it the rest load from the chunk files as the reader scrolls
PAGE_ROWS = 1000
CHUNK_ROWS = 1000  #: cards in one ``rows-NNNNNN.js`` file

def human(n: int) -> str:
    """A byte count for a reader: ``912 B``, ``3.4 MiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _e(text: Any) -> str:
    s = str(text)
    if not s.isprintable():  # control characters, lone surrogates (undecodable names)
        s = displayable(s)
    return html.escape(s, quote=True)


def _img(pic: Pic | None, alt: str, cls: str = "") -> str:
    if pic is None:
        return ""
    if pic.src is None:
        return (f'<div class="ph {_e(cls)}" role="img" aria-label="{_e(alt)}: no picture">'
                f'<span>{_e(pic.note or "no picture")}</span></div>')
    return (f'<img class="{_e(cls)}" src="{_e(pic.src)}" width="{_e(pic.width)}" '
            f'height="{_e(pic.height)}" loading="lazy" decoding="async" alt="{_e(alt)}">')


def _figure(pic: Pic | None, alt: str, caption: str, cls: str = "thumb") -> str:
    return f"<figure>{_img(pic, alt, cls)}<figcaption>{_e(caption)}</figcaption></figure>"


# --- one card ----------------------------------------------------------------------------------

_SEV_ORDER = {"error": 0, "warning": 1, "info": 2}


def _pictures_html(row: Row) -> str:
    """The input and what the model gets (one picture when they are the same); none to show:
    a narrow column with the placeholder's reason."""
    shown = [p for p in (row.before, row.after) if p is not None]
    out = ['<div class="pics bare">' if not any(p.src for p in shown) else '<div class="pics">']
    same = row.before is not None and row.before is row.after and row.status == "unchanged"
    if same:
        out.append(_figure(row.after, f"{row.name} as the model gets it", "sent as it is"))
    elif row.before is not None:
        out.append(_figure(row.before, f"{row.name} as given", "input"))
    if row.after is not None and not same:
        out.append('<div class="arrow" aria-hidden="true">&rarr;</div>')
        out.append(_figure(row.after, f"{row.name} as the model gets it", "model gets"))
    out.append("</div>")
    return "".join(out)


def _meta_html(row: Row) -> str:
    meta = [_e(row.details or row.kind)]
    if row.bytes_in is not None:
        sent = f" &rarr; {_e(human(row.bytes_out))}" if row.bytes_out is not None else ""
        meta.append(_e(human(row.bytes_in)) + sent)
    if row.tokens is not None:
        meta.append(_e(f"~{row.tokens:,} tokens (estimate)"))
    return f'<p class="meta">{" · ".join(meta)}</p>'


def _reason_html(row: Row, findings: list[Mapping[str, Any]]) -> str:
    """The reason a failed input failed; its finding is then not listed again (``findings``
    loses it) but its code is kept here."""
    if not row.reason:
        return ""
    text = _e(strip_name(row.reason, row.name))
    first = next((f for f in findings if message_of(f) == row.reason), None)
    if first is None:
        return f'<p class="reason">{text}</p>'
    findings.remove(first)
    return f'<p class="reason"><code>{_e(code_of(first))}</code> {text}</p>'


def _finding_html(f: Mapping[str, Any], row: Row) -> str:
    sev = severity_of(f)
    if sev == "error" and row.status in ("changed", "unchanged"):
        sev = "fixed"  # prepared: the error was an input's, and prep resolved it
    return (f'<li class="sev-{_e(sev)}"><span class="sev">{_e(sev)}</span> '
            f'<code>{_e(code_of(f))}</code> {_e(strip_name(message_of(f), row.name))}</li>')


def _words_html(row: Row, findings: list[Mapping[str, Any]]) -> str:
    out = []
    if row.changes:
        chips = "".join(f'<span class="chip k-{_e(k.replace(" ", "-"))}">{_e(k)}</span>'
                        for k in row.changes)
        out.append(f'<div class="chips">{chips}</div>')
    if row.fixes:
        out.append('<ul class="fixes">' + "".join(f"<li>{_e(f)}</li>" for f in row.fixes)
                   + "</ul>")
    if findings:
        ordered = sorted(findings, key=lambda f: _SEV_ORDER.get(severity_of(f), 0))
        out.append('<ul class="findings">' + "".join(_finding_html(f, row) for f in ordered)
                   + "</ul>")
    return "".join(out)


def _frames_html(row: Row, pics: list[Pic], what: str, cls: str) -> str:
    return (f'<div class="{cls}">'
            + "".join(_figure(p, f"{row.name} {what}{p.label}", p.label, "fr") for p in pics)
            + "</div>")


def _video_html(row: Row) -> str:
    out = []
    if row.strip:
        sampled = f", sampled by the server at {row.sampling}" if row.sampling else ""
        n = len(row.strip)
        preview = (f"{n} frames spread over the file, a preview here: the model gets the "
                   "frames the server samples" if n > 1 else "its first frame, a preview")
        out.append(f'<p class="vid">sent as a video file{_e(sampled)}: {_e(row.video)}</p>'
                   + _frames_html(row, row.strip, "at ", "strip")
                   + f'<p class="vid note">{_e(preview)}</p>')
    if row.sheet:
        shown = len(row.sheet)
        count = (f"all {shown} frames sent" if shown == row.sheet_total else
                 f"{shown} of the {row.sheet_total} frames sent (an even sample)")
        out.append(f'<p class="vid">sent as frames: {_e(row.video)}; {_e(count)}</p>'
                   + _frames_html(row, row.sheet, "frame at ", "sheet"))
    return "".join(out)


def row_html(row: Row, index: int) -> str:
    """One input's card (``index``: its place in the run, the card's id)."""
    findings = list(row.findings)
    reason = _reason_html(row, findings)
    return (f'<article class="row st-{_e(row.status)}" data-status="{_e(row.status)}" '
            f'data-name="{_e(row.name.lower())}" id="i{int(index)}">'
            + _pictures_html(row)
            + '<div class="body">'
            f'<h2><span class="badge b-{_e(row.status)}">{_e(row.status)}</span> '
            f'<span class="name">{_breakable(row.name)}</span></h2>'
            + _meta_html(row) + reason + _words_html(row, findings) + _video_html(row)
            + "</div></article>")


# the place after each of ``/ _ - .``: a literal inserted there, no template expanded a match
_BREAK_AFTER = re.compile(r"(?<=[/_.-])")


def _breakable(name: str) -> str:
    """A file name, escaped, that a narrow screen wraps after ``/ _ - .`` (not mid-word: CSS
    breaks a long name anywhere only when a part of it is wider than the line)."""
    return _BREAK_AFTER.sub("<wbr>", _e(name))


# --- the page around the cards -------------------------------------------------------------

_CSS = """
:root{--bg:#f6f7f9;--card:#fff;--ink:#1d2433;--mute:#667085;--line:#e4e7ec;--err:#c0362c;
--warn:#b54708;--ok:#067647;--chg:#3538cd;--info:#475467}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.45 system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header{background:#101828;color:#fff;padding:22px 28px 18px}
header h1{margin:0 0 2px;font-size:21px;font-weight:650;letter-spacing:.2px}
header .ctx{color:#98a2b3;font-size:13px}
.totals{display:flex;flex-wrap:wrap;gap:10px;margin:16px 0 12px}
.total{background:#1d2939;border-radius:10px;padding:9px 14px;min-width:110px}
.total b{display:block;font-size:20px;font-weight:650}
.total span{color:#98a2b3;font-size:12px;text-transform:uppercase;letter-spacing:.6px}
.kinds{display:flex;flex-wrap:wrap;gap:6px}
.kinds span{background:#344054;border-radius:999px;padding:3px 11px;font-size:13px}
.kinds span.zero{background:transparent;color:#667085;border:1px solid #344054}
nav{position:sticky;top:0;z-index:2;background:rgba(246,247,249,.96);border-bottom:1px solid
var(--line);padding:10px 28px;display:flex;gap:8px;align-items:center;flex-wrap:wrap}
nav button{font:inherit;font-size:14px;border:1px solid var(--line);background:#fff;
border-radius:999px;padding:4px 13px;cursor:pointer;color:var(--ink)}
nav button[aria-pressed=true]{background:var(--ink);color:#fff;border-color:var(--ink)}
nav input{font:inherit;font-size:14px;margin-left:auto;border:1px solid var(--line);
border-radius:8px;padding:5px 10px;min-width:240px}
nav .shown{color:var(--mute);font-size:13px}
main{padding:16px 28px 40px;max-width:1500px}
.row{display:flex;gap:22px;background:var(--card);border:1px solid var(--line);
border-left:4px solid var(--line);border-radius:10px;padding:16px 18px;margin:0 0 12px}
.row.st-failed{border-left-color:var(--err)}.row.st-changed{border-left-color:var(--chg)}
.row.st-warning{border-left-color:var(--warn)}.row.st-passed,.row.st-unchanged{
border-left-color:var(--ok)}
.pics{display:flex;align-items:center;justify-content:center;gap:10px;flex:none;width:460px}
figure{margin:0;text-align:center}
figcaption{font-size:12px;color:var(--mute);margin-top:4px}
img.thumb,.ph.thumb{max-width:200px;max-height:200px;width:auto;height:auto;border-radius:6px;
background:repeating-conic-gradient(#eef0f3 0 25%,#fff 0 50%) 50%/16px 16px;
box-shadow:0 0 0 1px var(--line);display:block;margin:auto}
.ph{display:flex;align-items:center;justify-content:center;width:150px;height:110px;
background:#f2f4f7;color:var(--mute);font-size:12px;border-radius:6px;padding:8px;
border:1px dashed #d0d5dd}
.pics.bare{width:150px}.pics.bare .ph{height:auto;min-height:44px}
.arrow{color:#98a2b3;font-size:22px}
.body{min-width:0;flex:1}
h2{font-size:16px;margin:0 0 4px;font-weight:600;overflow-wrap:anywhere}
.badge{font-size:11px;text-transform:uppercase;letter-spacing:.6px;border-radius:5px;
padding:2px 7px;vertical-align:2px;font-weight:650}
.b-failed{background:#fee4e2;color:var(--err)}.b-changed{background:#e0eaff;color:var(--chg)}
.b-unchanged,.b-passed{background:#dcfae6;color:var(--ok)}.b-warning{background:#fef0c7;
color:var(--warn)}
.meta{margin:0 0 8px;color:var(--mute);font-size:13px}
.reason{margin:0 0 8px;color:var(--err);font-weight:550}
.reason code{background:#fee4e2;border-radius:4px;padding:1px 5px;font-size:13px}
.chips{display:flex;gap:6px;flex-wrap:wrap;margin:0 0 6px}
.chip{background:#eef4ff;color:var(--chg);border-radius:999px;padding:1px 10px;font-size:13px;
font-weight:550}
ul{margin:4px 0 6px;padding-left:18px}
.fixes li{color:#344054;font-size:14px}
.findings{list-style:none;padding:0}
.findings li{font-size:14px;margin:3px 0}
.findings code{background:#f2f4f7;border-radius:4px;padding:1px 5px;font-size:13px}
.sev{display:inline-block;min-width:58px;font-size:11px;text-transform:uppercase;
letter-spacing:.5px;font-weight:650}
.sev-error .sev{color:var(--err)}.sev-fixed .sev{color:var(--ok)}
.sev-warning .sev{color:var(--warn)}.sev-info .sev{color:var(--info)}
.vid{margin:8px 0 6px;font-size:13px;color:#344054}.vid.note{color:var(--mute)}
.strip,.sheet{display:flex;flex-wrap:wrap;gap:8px}
img.fr,.ph.fr{max-width:128px;max-height:96px;width:auto;height:auto;border-radius:4px;
box-shadow:0 0 0 1px var(--line);display:block}
.sheet figcaption,.strip figcaption{font-variant-numeric:tabular-nums}
footer{color:var(--mute);font-size:12px;padding:0 28px 30px}
.hide{display:none}
@media (max-width:860px){.row{flex-direction:column}.pics{width:auto}
.pics figure{flex:0 1 auto;min-width:0}img.thumb{max-width:100%;height:auto}
main,nav,header{padding-left:14px;padding-right:14px}.row{padding:12px}
nav input{min-width:0;flex:1 1 160px}}
"""

# Filters the cards on the page; past PAGE_ROWS loads the chunk files (<script src>: they call
# mediaprepRows) one at a time while the end of the list is near the screen, keeping only the
# cards the filter matches. A filter change drops the loaded cards and walks the files again.
_JS = """
(function(){
var main=document.querySelector('main'),more=document.getElementById('more');
var shown=document.getElementById('shown'),want='all',q='',next=1,busy=0,gen=0;
var chunks=more?+more.dataset.chunks:0,prefix=more?more.dataset.prefix:'';
function ok(r){return (want==='all'||r.dataset.status===want)&&
(!q||r.dataset.name.indexOf(q)>=0)}
function count(){var n=main.querySelectorAll('article.row:not(.hide)').length;
shown.textContent=n.toLocaleString()+' shown';if(!more)return;
more.textContent=next>chunks?'end of the list':'more load as you scroll ('+
(next-1).toLocaleString()+' of '+chunks.toLocaleString()+' files of rows looked at)'}
function fill(){if(!more||busy||next>chunks||
more.getBoundingClientRect().top>2*innerHeight)return;
busy=1;var s=document.createElement('script');s.src=prefix+('00000'+next).slice(-6)+'.js';
s.dataset.gen=gen;s.onerror=function(){busy=0;more.textContent='rows file '+next+
' is missing: keep report_files/ beside this page'};document.body.appendChild(s)}
window.mediaprepRows=function(k,text){var s=document.currentScript;
if(s)s.remove();if(!s||+s.dataset.gen!==gen||k!==next)return;busy=0;next++;
var t=document.createElement('template');t.innerHTML=text;
[].slice.call(t.content.children).forEach(function(r){if(ok(r)){r.classList.add('paged');
main.insertBefore(r,more)}});count();fill()};
function apply(){gen++;busy=0;next=1;
main.querySelectorAll('article.paged').forEach(function(r){r.remove()});
main.querySelectorAll('article.row').forEach(function(r){r.classList.toggle('hide',!ok(r))});
count();fill()}
document.querySelectorAll('nav button').forEach(function(b){b.addEventListener('click',
function(){want=b.dataset.want;document.querySelectorAll('nav button').forEach(function(o){
o.setAttribute('aria-pressed',o===b?'true':'false')});apply()})});
document.getElementById('q').addEventListener('input',function(e){
q=e.target.value.toLowerCase();apply()});
addEventListener('scroll',fill,{passive:true});addEventListener('resize',fill);apply()})();
"""


def _head(title: str, totals: list[tuple[str, str]], counts: Mapping[str, int] | None,
          context: str) -> str:
    parts = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width,initial-scale=1">',
             # no request may leave the page: not even a favicon lookup; scripts only its own
             # (inline, and the chunk files beside it)
             '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
             "img-src 'self' data:; style-src 'unsafe-inline'; "
             "script-src 'self' 'unsafe-inline'\">",
             '<link rel="icon" href="data:,">',
             f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
             f"<header><h1>{_e(title)}</h1>"]
    if context:
        parts.append(f'<div class="ctx">{_e(context)}</div>')
    parts.append('<div class="totals">' + "".join(
        f'<div class="total"><b>{_e(v)}</b><span>{_e(k)}</span></div>' for k, v in totals)
        + "</div>")
    if counts is not None:
        parts.append('<div class="kinds" aria-label="changes by kind">' + "".join(
            f'<span class="{"" if counts.get(k) else "zero"}">{_e(counts.get(k, 0))} {_e(k)}</span>'
            for k in KINDS) + "</div>")
    parts.append("</header>")
    return "".join(parts)


def _nav(n_status: Mapping[str, int], statuses: tuple[str, ...]) -> str:
    total = sum(n_status.get(s, 0) for s in statuses)
    buttons = [("all", f"all {total:,}")] + [(s, f"{s} {n_status.get(s, 0):,}")
                                             for s in statuses]
    return ("<nav>" + "".join(
        f'<button type="button" data-want="{_e(w)}" '
        f'aria-pressed="{"true" if w == "all" else "false"}">{_e(label)}</button>'
        for w, label in buttons)
        + '<span class="shown" id="shown"></span>'
        '<input id="q" type="search" placeholder="filter by name" aria-label="filter by name">'
        "</nav>")


def _tail(footer: str, chunks: int, chunk_prefix: str) -> str:
    more = (f'<p class="meta" id="more" data-chunks="{int(chunks)}" '
            f'data-prefix="{_e(chunk_prefix)}"></p>' if chunks else "")
    return (f"{more}</main><footer>mediaprep report{' · ' + _e(footer) if footer else ''}"
            f"</footer><script>{_JS}</script></body></html>\n")


def page_parts(title: str, cards: Iterable[str], n_status: Mapping[str, int],
               totals: list[tuple[str, str]], counts: Mapping[str, int] | None, context: str,
               *, statuses: tuple[str, ...], footer: str, chunks: int = 0,
               chunk_prefix: str = "") -> Iterator[str]:
    """The page's text in pieces (it can be written as it is made): the header, ``cards``
    (HTML, in page order), then ``chunks`` files of more cards at ``chunk_prefix`` +
    :func:`chunk_name`'s number."""
    yield _head(title, totals, counts, context)
    yield _nav(n_status, statuses) + "<main>"
    empty = True
    for card in cards:
        empty = False
        yield card
    if empty and not chunks:
        yield '<p class="meta">No inputs.</p>'
    yield _tail(footer, chunks, chunk_prefix)


def in_page_order(rows: list[Row]) -> list[tuple[int, Row]]:
    """Rows with their index, failed inputs first (then in run order)."""
    return sorted(enumerate(rows), key=lambda ir: (ir[1].status != "failed", ir[0]))


def page(title: str, rows: list[Row], totals: list[tuple[str, str]],
         counts: Mapping[str, int] | None, context: str, *, statuses: tuple[str, ...],
         footer: str) -> str:
    """A whole page of ``rows`` (every card on it)."""
    n_status = {s: sum(1 for r in rows if r.status == s) for s in statuses}
    cards = (row_html(row, i) for i, row in in_page_order(rows))
    return "".join(page_parts(title, cards, n_status, totals, counts, context,
                              statuses=statuses, footer=footer))


def chunk_text(k: int, cards: Iterable[str]) -> str:
    """Chunk file ``k``: a script that hands its cards to the page."""
    return f"mediaprepRows({int(k)},{json.dumps(''.join(cards), ensure_ascii=True)});\n"

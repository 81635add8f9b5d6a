"""``output.json_line`` writes exactly what ``json.dumps`` writes (UTF-8 kept readable, a lone
surrogate escaped), also when long texts (a line's megabytes of base64) are put in after
encoding instead of walked by the encoder."""

from __future__ import annotations

import base64
import json
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from mediaprep.output import json_line

LONG = 1 << 16


def _reference(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True)
    return text


# long texts of every kind: plain base64, and ones holding a character JSON must escape
_seeds = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF,
                                        blacklist_categories=()), min_size=1, max_size=6)
_long = st.builds(lambda seed, pad: ("A" * (LONG - len(seed) + pad)) + seed, _seeds,
                  st.integers(0, 3))
_texts = st.one_of(st.text(max_size=8), _long)
_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), _texts),
                       lambda inner: st.one_of(st.lists(inner, max_size=3),
                                               st.dictionaries(st.text(max_size=4), inner,
                                                               max_size=3)),
                       max_leaves=6)


@settings(max_examples=150, deadline=None)
@given(_values)
def test_a_line_is_what_json_dumps_writes(value):
    assert json_line(value) == _reference(value)


def test_a_line_with_data_urls_a_lone_surrogate_and_a_tuple_is_json_dumps_text():
    url = "data:image/png;base64," + base64.b64encode(os.urandom(300_000)).decode()
    line = {"path": "caf\u00e9 \udcff.png", "part": {"image_url": {"url": url}},
            "parts": (url, url[:LONG + 5] + '"\\'), "token-like": "mediaprep-0000000000000000-0"}
    assert json_line(line) == json.dumps(line, ensure_ascii=True)
    line["path"] = "caf\u00e9.png"
    assert json_line(line) == json.dumps(line, ensure_ascii=False)
    assert json.loads(json_line(line)) == {**line, "parts": list(line["parts"])}

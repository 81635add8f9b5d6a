"""Resource: one input object for every kind, with the URL policy decided in one place."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from mediaprep.resource import Resource, ResourceError, to_resource
from mediaprep.settings import Settings


@pytest.mark.parametrize(("allow", "transport", "mode", "code"), [
    (False, "base64", "refused", "file.unreadable"),
    (False, "url", "unverified", "url.not_verified"),
    (True, "base64", "fetch", None),
    (True, "url", "head", None),
])
def test_url_policy_is_one_decision(allow: bool, transport: str, mode: str,
                                    code: str | None) -> None:
    res = to_resource("https://example.invalid/a.jpg")
    access = res.access(Settings(allow_url=allow, transport=transport))
    assert access.mode == mode
    assert (access.finding.code if access.finding else None) == code


def test_local_inputs_need_no_policy(tmp_path: Path) -> None:
    f = tmp_path / "a.png"
    f.write_bytes(b"x")
    for value in (f, b"bytes", io.BytesIO(b"stream")):
        res = to_resource(value)
        assert res.access(Settings()).mode == "local"
        with res.local(Settings()) as local:
            assert local is res  # nothing fetched, nothing copied


def test_as_path_gives_a_temp_copy_of_bytes_and_removes_it(tmp_path: Path) -> None:
    res = to_resource(b"\x00\x01payload", name="clip.mp4")
    with res.as_path(".mp4") as p:
        assert p.read_bytes() == b"\x00\x01payload" and p.suffix == ".mp4"
    assert not p.exists()
    f = tmp_path / "v.mp4"
    f.write_bytes(b"v")
    with to_resource(f).as_path() as p2:
        assert p2 == f
    assert f.exists()  # the input itself is never removed


def test_a_resource_passes_through_to_resource_unchanged() -> None:
    res = Resource(name="x", data=b"1")
    assert to_resource(res) is res
    with pytest.raises(ResourceError):
        to_resource(3.5)  # type: ignore[arg-type]

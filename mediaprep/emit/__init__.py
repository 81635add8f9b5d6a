"""Emit stage: content parts, messages and request bodies in either API dialect.

Each name is imported on first use: a kind that makes parts does not load the request side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:
    from .parts import (
        data_url,
        file_uri,
        frames_part,
        image_part,
        prefixed_url,
        text_part,
        urls_in,
        video_file_part,
    )
    from .request import (
        check_request,
        dashscope_body,
        openai_body,
        request_body,
        request_headers,
        user_message,
    )

# public name -> the module that defines it
_HOMES = {
    **dict.fromkeys(("data_url", "file_uri", "frames_part", "image_part", "prefixed_url",
                     "text_part", "urls_in", "video_file_part"), ".parts"),
    **dict.fromkeys(("check_request", "dashscope_body", "openai_body", "request_body",
                     "request_headers", "user_message"), ".request"),
}

__all__ = [
    "check_request",
    "dashscope_body",
    "data_url",
    "file_uri",
    "frames_part",
    "image_part",
    "openai_body",
    "prefixed_url",
    "request_body",
    "request_headers",
    "text_part",
    "urls_in",
    "user_message",
    "video_file_part",
]

__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals(), __all__)

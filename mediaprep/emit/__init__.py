"""Emit stage: content parts, messages and request bodies in either API dialect."""

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

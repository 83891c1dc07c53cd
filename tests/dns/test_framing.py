"""DNS-over-TCP framing, fed byte by byte without sockets."""

from __future__ import annotations

import pytest

from homing.dns.framing import CLOSED, NEED_DATA, FramingError, StreamFramer, frame

QUERY_1 = bytes(range(12)) + b"first"
QUERY_2 = bytes(range(100, 112)) + b"second one"


def test_frame_prefixes_the_length() -> None:
    assert frame(b"\x01" * 300) == b"\x01\x2c" + b"\x01" * 300


@pytest.mark.parametrize("size", [0, 65536])
def test_frame_rejects_what_cannot_be_framed(size: int) -> None:
    with pytest.raises(ValueError, match="1..65535"):
        frame(b"x" * size)


def test_pipelined_messages_byte_by_byte() -> None:
    framer = StreamFramer()
    stream = frame(QUERY_1) + frame(QUERY_2)
    got: list[bytes] = []
    for i in range(len(stream)):
        framer.receive_data(stream[i : i + 1])
        message = framer.next_message()
        if message is NEED_DATA:
            # Only the last byte of each message completes it.
            assert i + 1 not in (len(frame(QUERY_1)), len(stream))
            assert framer.in_message
            continue
        assert isinstance(message, bytes)
        got.append(message)
        assert framer.next_message() is NEED_DATA
    assert got == [QUERY_1, QUERY_2]
    assert not framer.in_message


def test_several_messages_in_one_chunk() -> None:
    framer = StreamFramer()
    framer.receive_data(frame(QUERY_1) + frame(QUERY_2) + frame(QUERY_1)[:3])
    assert framer.next_message() == QUERY_1
    assert framer.next_message() == QUERY_2
    assert framer.next_message() is NEED_DATA
    assert framer.in_message, "three bytes of the third message wait"


def test_nothing_buffered_is_not_in_a_message() -> None:
    framer = StreamFramer()
    assert not framer.in_message
    assert framer.next_message() is NEED_DATA
    framer.receive_data(b"\x00")
    assert framer.in_message, "half a length prefix counts as a started message"
    assert framer.next_message() is NEED_DATA


def test_zero_length_is_a_protocol_error() -> None:
    framer = StreamFramer()
    framer.receive_data(b"\x00")
    assert framer.next_message() is NEED_DATA
    framer.receive_data(b"\x00")
    with pytest.raises(FramingError, match="zero-length"):
        framer.next_message()


def test_oversized_is_refused_as_soon_as_the_length_is_known() -> None:
    framer = StreamFramer(max_message=512)
    framer.receive_data(frame(b"x" * 512))
    assert framer.next_message() == b"x" * 512
    framer.receive_data(b"\x02")
    assert framer.next_message() is NEED_DATA
    framer.receive_data(b"\x01")  # 513: refused before any of its body arrives
    with pytest.raises(FramingError, match="513 bytes over the limit of 512"):
        framer.next_message()


def test_clean_end_of_stream() -> None:
    framer = StreamFramer()
    framer.receive_data(frame(QUERY_1))
    framer.receive_data(b"")
    assert framer.next_message() == QUERY_1, "messages before the end are still delivered"
    assert framer.next_message() is CLOSED
    assert framer.next_message() is CLOSED


@pytest.mark.parametrize("partial", [b"\x00", frame(QUERY_1)[:-1]])
def test_end_of_stream_inside_a_message(partial: bytes) -> None:
    framer = StreamFramer()
    framer.receive_data(partial)
    framer.receive_data(b"")
    with pytest.raises(FramingError, match="stream ended inside a message"):
        framer.next_message()


def test_no_data_after_the_end() -> None:
    framer = StreamFramer()
    framer.receive_data(b"")
    with pytest.raises(RuntimeError):
        framer.receive_data(b"\x00")


@pytest.mark.parametrize("max_message", [0, 11, 65536])
def test_max_message_is_checked(max_message: int) -> None:
    with pytest.raises(ValueError, match="max_message"):
        StreamFramer(max_message=max_message)

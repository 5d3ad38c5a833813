#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/, and under
fuzz/regressions/<target>/ the inputs that showed library deviations since
fixed.

The seeds are committed; run this only to change them:

    python3 fuzz/gen_corpus.py

It removes the seed files it owns (named `seed-*`) before writing, and
leaves any other file in the corpus directories alone.
"""

import base64
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# ----- frames ---------------------------------------------------------------


def frame(opcode, payload=b"", fin=True, mask=None, rsv=0):
    """One frame, length minimally encoded; `mask` is a 4-byte key or None."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n <= 125:
        head = bytes([b0, mbit | n])
    elif n <= 0xFFFF:
        head = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if mask:
        head += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + payload


KEY = bytes([0x37, 0xFA, 0x21, 0x3D])  # the RFC's example key
TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def close_payload(code, reason=b""):
    return struct.pack(">H", code) + reason


def autobahn_like(mask):
    """Frames as Autobahn's cases send them, masked for a server to read."""
    m = KEY if mask else None
    return {
        "fragmented-text-interleaved-ping": frame(TEXT, b"Hel", fin=False, mask=m)
        + frame(PING, b"ping", mask=m)
        + frame(CONT, b"lo", mask=m),
        "close-1000-reason": frame(CLOSE, close_payload(1000, b"bye"), mask=m),
        "close-invalid-code-1005": frame(CLOSE, close_payload(1005), mask=m),
        "text-invalid-utf8": frame(TEXT, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", mask=m),
        "text-utf8-split-across-fragments": frame(TEXT, b"\xce", fin=False, mask=m) + frame(CONT, b"\xba", mask=m),
        "binary-64bit-length": frame(BINARY, b"\xAB" * 65536, mask=m)[:14 if m else 10] + b"\xAB" * 64,
        "binary-256": frame(BINARY, bytes(range(256)), mask=m),
        "ping-125": frame(PING, b"*" * 125, mask=m),
        "ping-126-too-long": frame(PING, b"*" * 126, mask=m),
        "reserved-opcode-3": frame(0x3, b"", mask=m),
        "rsv1-set": frame(TEXT, b"x", rsv=4, mask=m),
        "continuation-without-message": frame(CONT, b"x", mask=m),
        "fragmented-ping": frame(PING, b"x", fin=False, mask=m),
        "empty-fragments": frame(TEXT, b"", fin=False, mask=m) + frame(CONT, b"", fin=False, mask=m) + frame(CONT, b"ok", mask=m),
    }


# The examples of RFC 6455 section 5.7.
RFC_5_7 = {
    "rfc5.7-unmasked-hello": bytes([0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F]),
    "rfc5.7-masked-hello": bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]),
    "rfc5.7-fragmented-hello": bytes([0x01, 0x03, 0x48, 0x65, 0x6C, 0x80, 0x02, 0x6C, 0x6F]),
    "rfc5.7-unmasked-ping": bytes([0x89, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F]),
    "rfc5.7-masked-pong": bytes([0x8A, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]),
    "rfc5.7-binary-256": bytes([0x82, 0x7E, 0x01, 0x00]) + bytes(8),
    "rfc5.7-binary-64k": bytes([0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]) + bytes(8),
}

# ----- handshakes -------------------------------------------------------------

# RFC 6455 section 1.3's request.
RFC_REQUEST = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


# The key the client target sends: wscore_fuzz::fixed_entropy's first 16 bytes.
CLIENT_KEY = base64.b64encode(bytes((i * 37 + 11) & 0xFF for i in range(16)))
CLIENT_ACCEPT = accept_for(CLIENT_KEY)


def response(accept, extra=b""):
    return (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n" + extra + b"\r\n"
    )


def split_input(flags, sizes, data):
    """The handshake targets' layout: flags, count, sizes, data."""
    assert len(sizes) < 8
    return bytes([flags, len(sizes)]) + bytes(sizes) + data


def server_seeds():
    masked = autobahn_like(mask=True)
    return {
        "rfc1.3-request": split_input(0, [], RFC_REQUEST),
        "rfc1.3-request-bytewise": split_input(0, [0], RFC_REQUEST),
        "rfc1.3-request-then-frames": split_input(
            0, [16, 200, 3], RFC_REQUEST + RFC_5_7["rfc5.7-masked-hello"] + masked["fragmented-text-interleaved-ping"] + masked["close-1000-reason"]
        ),
        "rfc1.3-request-rejected": split_input(0x20, [], RFC_REQUEST),
        "rfc1.3-request-peek": split_input(0x40, [9], RFC_REQUEST + masked["text-invalid-utf8"]),
        "request-truncated-eof": split_input(0x08, [], RFC_REQUEST[:-10]),
        "request-slow-timeout": split_input(0x10, [], RFC_REQUEST[:40]),
        "request-version-8": split_input(0, [], RFC_REQUEST.replace(b"Version: 13", b"Version: 8")),
        "request-post": split_input(0, [], RFC_REQUEST.replace(b"GET", b"POST")),
        "request-with-body": split_input(0, [], RFC_REQUEST.replace(b"Origin", b"Content-Length: 3\r\nOrigin") + b"abc"),
        "request-too-large": split_input(0x01, [20], RFC_REQUEST),
        "request-too-many-headers": split_input(0x04, [], RFC_REQUEST.replace(b"\r\n\r\n", b"\r\nA: 1\r\nB: 2\r\n\r\n")),
        "request-lf-only": split_input(0, [], RFC_REQUEST.replace(b"\r\n", b"\n")),
        "request-then-frames-bounded-input": split_input(
            0x80, [255, 255], RFC_REQUEST + masked["binary-256"] * 40 + masked["close-1000-reason"]
        ),
        "request-rejected-then-frames-lingers": split_input(0x20, [], RFC_REQUEST + masked["binary-256"] * 3),
        "request-bad-then-eof": split_input(0x08, [], RFC_REQUEST.replace(b"GET", b"PUT")),
    }


def client_seeds():
    unmasked = autobahn_like(mask=False)
    frames = RFC_5_7["rfc5.7-unmasked-hello"] + unmasked["fragmented-text-interleaved-ping"] + unmasked["close-1000-reason"]
    return {
        "valid-101": split_input(0, [], response(CLIENT_ACCEPT)),
        "valid-101-bytewise": split_input(0, [0], response(CLIENT_ACCEPT)),
        "valid-101-then-frames": split_input(0, [50, 7], response(CLIENT_ACCEPT) + frames),
        "prefix-then-frames": split_input(0x01, [3], frames + unmasked["ping-125"]),
        "prefix-then-invalid-utf8": split_input(0x01, [], unmasked["text-invalid-utf8"]),
        "prefix-then-64bit-length": split_input(0x01, [], unmasked["binary-64bit-length"]),
        "prefix-then-masked-frame": split_input(0x01, [], RFC_5_7["rfc5.7-masked-hello"]),
        "prefix-open-head-protocol": split_input(0x02 | 0x04, [], b"Sec-WebSocket-Protocol: chat\r\n\r\n"),
        "prefix-open-head-extension": split_input(0x02, [], b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"),
        "rfc1.3-response-wrong-key": split_input(0, [], response(b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")),
        "status-403": split_input(0x08, [], b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno"),
        "truncated-eof": split_input(0x08, [], response(CLIENT_ACCEPT)[:30]),
        "too-large": split_input(0x10, [], response(CLIENT_ACCEPT, b"X-Pad: " + b"p" * 300 + b"\r\n")),
        "status-503-body-in-pieces": split_input(
            0, [20, 3], b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 11\r\n\r\ntry again\r\n"
        ),
        "status-401-body-cut-by-eof": split_input(0x08, [], b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 99\r\n\r\nshort"),
        "valid-101-then-frames-bounded-input": split_input(
            0x80, [255, 255, 255], response(CLIENT_ACCEPT) + unmasked["binary-256"] * 40 + unmasked["ping-125"]
        ),
    }


def frame_seeds():
    seeds = dict(RFC_5_7)
    for name, data in autobahn_like(mask=True).items():
        seeds["masked-" + name] = data
    seeds["unmasked-close-1000"] = frame(CLOSE, close_payload(1000))
    seeds["length-high-bit"] = bytes([0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0])
    seeds["length-non-minimal-16"] = bytes([0x82, 0x7E, 0x00, 0x7D])
    return seeds


# ----- connection_ops: the arbitrary encoding of its Input --------------------
#
# Mirrors arbitrary 1.x: integers little-endian, bools as the low bit of a byte,
# Option as a bool then the value, enum variants as a u32 scaled by the variant
# count, the trailing Vec<Op> as (1, op)* (0); `Bytes` as a u16 length + bytes.

OPS = ["Raw", "Deliver", "Flush", "Text", "Binary", "Chunk", "Ping", "Pong", "Close",
       "Advance", "Deadline", "Eof", "TransportError", "Peek", "Transmit", "Offer", "Poll",
       "Drain", "SetStreaming", "SendOwned", "SendPrepared", "Split", "DropKept", "AdapterTurn"]


def variant(index, count):
    value = ((2 * index + 1) << 32) // (2 * count)
    assert (value * count) >> 32 == index
    return struct.pack("<I", value)


def side(name):
    return variant(["client", "server"].index(name), 2)


def half(name):
    return variant(["recv", "send"].index(name), 2)


def u8(v):
    return bytes([v])


def u16(v):
    return struct.pack("<H", v)


def boolean(v):
    return b"\x01" if v else b"\x00"


def option(value):
    """An Option: None, or the encoded value."""
    return b"\x00" if value is None else b"\x01" + value


def blob(data):
    return u16(len(data)) + data


def op(name, *fields):
    return b"\x01" + variant(OPS.index(name), len(OPS)) + b"".join(fields)


def deflate_opts(level=1, threshold=0, server_nct=False, client_nct=False, server_bits=None,
                 client_bits=None, fallback=True):
    """One side's DeflateOpts; window bits are 8 + value % 8."""
    out = u8(level) + u8(threshold) + boolean(server_nct) + boolean(client_nct)
    out += option(None if server_bits is None else u8(server_bits - 8))
    out += option(None if client_bits is None else u8(client_bits - 8))
    return out + boolean(fallback)


RETAIN = [0, 64, 4096, 16384]


def ops_input(ops, streaming=False, retain=4096, release_ms=1000, max_send_frame=999, max_fragments=63,
              max_unprocessed=65535 - 1024, max_pongs=16, ping_ms=None, idle_ms=None, close_ms=500,
              deflate=None):
    """`max_unprocessed` is the config value minus 1 KiB (taken modulo 8 KiB);
    `max_pongs` the config value (1 to 4)."""
    head = boolean(streaming) + u8(RETAIN.index(retain))
    head += option(None if release_ms is None else u16(release_ms))
    head += u16(max_send_frame) + u8(max_fragments)
    head += u16(max_unprocessed % 8192) + u8((max_pongs - 1) % 4)
    head += option(None if ping_ms is None else u16(ping_ms))
    head += option(None if idle_ms is None else u16(idle_ms))
    head += u16(close_ms)
    head += option(None if deflate is None else deflate[0] + deflate[1])
    return head + b"".join(ops) + b"\x00"


def deliver(to, max_bytes=0xFFFF, pieces=0, direct=False):
    return op("Deliver", side(to), u16(max_bytes), u8(pieces), boolean(direct))


def flush(owned=False):
    return op("Flush", boolean(owned))


def drain(who, owned=False):
    return op("Drain", side(who), boolean(owned))


def poll(who, count=0, owned=False, keep=False):
    return op("Poll", side(who), u8(count), boolean(owned), boolean(keep))


def transmit(who, max_bytes=0xFFFF, vectored=None):
    return op("Transmit", side(who), u16(max_bytes), option(None if vectored is None else u8(vectored)))


def offer(to, max_bytes=0xFFFF, pieces=0, direct=False, overcommit=0):
    return op("Offer", side(to), u16(max_bytes), u8(pieces), boolean(direct), u8(overcommit))


def advance(ms, only=None):
    return op("Advance", u16(ms), option(None if only is None else side(only[0]) + half(only[1])))


def peek(who):
    return op("Peek", side(who))


def ops_seeds():
    masked = autobahn_like(mask=True)
    unmasked = autobahn_like(mask=False)
    close = lambda who, code, reason=b"": op("Close", side(who), u16(0x8000 | code), blob(reason))
    return {
        "echo-and-close": ops_input([
            op("Text", side("client"), blob(b"Hello"), u8(0)), flush(),
            op("Text", side("server"), blob("κόσμε".encode()), u8(2)), flush(),
            close("client", 1000, b"done"), flush(), flush(), flush(),
        ]),
        "chunks-with-ping": ops_input([
            op("Chunk", side("client"), boolean(True), blob(b"Hel\xce"), boolean(False)),
            op("Ping", side("client"), blob(b"p")),
            op("Chunk", side("client"), boolean(True), blob(b"\xbalo"), boolean(True)),
            deliver("server", 5, 2), drain("server"), deliver("server", 0xFFFF, 1, True), drain("server"), flush(),
        ]),
        "big-binary-split": ops_input([
            op("Binary", side("client"), u16(20000), u8(0x5A)),
            deliver("server", 3000, 3), drain("server"), deliver("server", 3000, 0, True), drain("server"),
            op("Binary", side("server"), u16(12000), u8(1)), flush(), flush(),
        ], max_send_frame=4096),
        "raw-frames-to-server": ops_input([
            op("Raw", side("server"), blob(RFC_5_7["rfc5.7-masked-hello"] + masked["fragmented-text-interleaved-ping"])),
            flush(),
            op("Raw", side("server"), blob(masked["close-1000-reason"])), flush(), flush(),
        ]),
        "raw-frames-to-client": ops_input([
            op("Raw", side("client"), blob(RFC_5_7["rfc5.7-unmasked-hello"] + unmasked["binary-256"] + unmasked["ping-125"])),
            flush(),
            op("Raw", side("client"), blob(unmasked["binary-64bit-length"])), flush(),
        ]),
        "raw-invalid-utf8": ops_input([
            op("Raw", side("client"), blob(unmasked["text-invalid-utf8"])), flush(),
            op("Text", side("client"), blob(b"after"), u8(0)), op("Close", side("client"), u16(0), blob(b"")),
        ]),
        "streaming-peek": ops_input([
            op("Chunk", side("server"), boolean(False), blob(b"abc"), boolean(False)),
            op("Chunk", side("server"), boolean(False), blob(b"def"), boolean(True)),
            peek("client"), deliver("client", 4), peek("client"), drain("client"),
            deliver("client", 0xFFFF, 2, True), peek("client"), poll("client", 3), flush(),
        ], streaming=True),
        "heartbeat-and-idle": ops_input([
            advance(150), flush(), op("Deadline", side("client")), flush(),
            advance(2000), flush(), op("Deadline", side("server")), flush(),
        ], ping_ms=100, idle_ms=1000),
        "close-timeout-eof": ops_input([
            close("server", 4000, b"bye"), deliver("client", 0xFFFF), drain("client"),
            advance(600), op("Eof", side("server")), flush(), op("Deadline", side("client")), drain("client"),
        ]),
        "transport-error-mid-frame": ops_input([
            op("Binary", side("server"), u16(5000), u8(7)), deliver("client", 100), drain("client"),
            op("TransportError", side("server"), half("send")), flush(), op("Eof", side("client")), flush(),
        ]),
        "pongs-owed-under-backpressure": ops_input([
            op("Binary", side("server"), u16(9000), u8(3)),
            op("Ping", side("client"), blob(b"1" * 125)), op("Ping", side("client"), blob(b"2" * 125)),
            op("Ping", side("client"), blob(b"3" * 125)), deliver("server"), drain("server"),
            transmit("server", 100), op("Ping", side("client"), blob(b"4")), deliver("server"), drain("server"),
            flush(), flush(),
        ], max_pongs=2),
        "deflate-echo": ops_input([
            op("Text", side("client"), blob(b"compress me " * 20), u8(3)), flush(),
            op("Binary", side("server"), u16(5000), u8(0)), deliver("client", 700, 3, True), drain("client"), flush(),
            op("Chunk", side("client"), boolean(True), blob(b"abc" * 50), boolean(False)),
            op("Chunk", side("client"), boolean(True), blob(b"def" * 50), boolean(True)), flush(),
            close("server", 1000), flush(), flush(),
        ], deflate=(deflate_opts(level=6), deflate_opts(level=1))),
        "deflate-window-bits-no-takeover": ops_input([
            op("Text", side("server"), blob("κόσμε ".encode() * 40), u8(1)), flush(),
            op("Text", side("server"), blob("κόσμε ".encode() * 40), u8(1)), flush(),
            op("Text", side("client"), blob(b"xyz" * 300), u8(0)), flush(),
        ], streaming=True, deflate=(deflate_opts(level=9, server_bits=9, client_bits=8, client_nct=True),
                                    deflate_opts(level=0, server_nct=True, client_bits=10))),
        "deflate-raw-compressed": ops_input([
            # "Hello" compressed (RFC 7692 section 7.2.3.1), to the client, then
            # a compressed continuation (RSV1 where it is not allowed).
            op("Raw", side("client"), blob(bytes([0xC1, 0x07, 0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00]))), flush(),
            op("Raw", side("client"), blob(bytes([0x41, 0x03, 0xF2, 0x48, 0xCD, 0xC0, 0x04, 0xC9, 0xC9, 0x07, 0x00]))),
            flush(),
        ], deflate=(deflate_opts(), deflate_opts())),
        "write-buffer-full": ops_input([
            op("Binary", side("client"), u16(9000), u8(1)), op("Binary", side("client"), u16(10), u8(2)),
            op("Raw", side("client"), blob(unmasked["ping-125"])), drain("client"),
            op("Ping", side("client"), blob(b"x")), close("client", 1001), deliver("server", 0xFFFF, 3), flush(), flush(),
        ]),
        # Defect (a): a fragmented message larger than retained_buffer_capacity
        # is peeked, a timer runs past the buffer-release deadline (set when the
        # first message's buffer drained), then the message is polled.
        "peek-timer-poll-fragmented": ops_input([
            op("Binary", side("client"), u16(5000), u8(0x11)), flush(),
            op("Binary", side("client"), u16(6000), u8(0x22)), deliver("server"),
            peek("server"), advance(300), transmit("server"), offer("server"), drain("server"), flush(),
        ], retain=0, release_ms=100),
        "peek-timer-poll-owned": ops_input([
            op("Text", side("server"), blob(b"abcdefgh"), u8(200)), flush(True),
            op("Text", side("server"), blob(b"ijklmnop"), u8(250)), deliver("client", 0xFFFF, 2, True),
            peek("client"), op("Deadline", side("client")), advance(5000), peek("client"),
            poll("client", 0, True, True), op("Ping", side("server"), blob(b"!")), flush(True),
        ], retain=64, release_ms=10),
        "adapter-turns": ops_input([
            op("Binary", side("server"), u16(3000), u8(1)), op("Ping", side("server"), blob(b"hb")),
            transmit("server", 1500), offer("client"),
            op("AdapterTurn", side("client"), u16(50), boolean(True), boolean(True), boolean(False)),
            op("AdapterTurn", side("client"), u16(2000), boolean(False), boolean(True), boolean(True)),
            deliver("client"), op("AdapterTurn", side("client"), u16(0), boolean(True), boolean(False), boolean(False)),
            flush(),
        ], retain=64, release_ms=500),
        "bounded-input-peek": ops_input([
            op("Binary", side("client"), u16(1500), u8(1)), op("Binary", side("client"), u16(1500), u8(2)),
            op("Binary", side("client"), u16(1500), u8(3)), op("Binary", side("client"), u16(1500), u8(4)),
            transmit("client"), offer("server", 100), peek("server"), offer("server"), offer("server", 0xFFFF, 3, True),
            poll("server"), offer("server"), peek("server"), offer("server", 0xFFFF, 0, True, 200), drain("server"),
            offer("server"), drain("server"), flush(),
        ], max_unprocessed=0, max_send_frame=4000),
        "split-halves-interleaved": ops_input([
            op("Split", side("server"), boolean(False)),
            op("Text", side("client"), blob(b"to the reader"), u8(0)), op("Ping", side("client"), blob(b"there?")),
            deliver("server"), poll("server", 1),
            op("Text", side("server"), blob(b"from the writer"), u8(40)), transmit("server", 30, 2),
            advance(10, ("server", "recv")), transmit("server", 0xFFFF, 7), deliver("client"), drain("client"),
            op("Split", side("client"), boolean(False)), op("Split", side("server"), boolean(True)),
            close("client", 1000), flush(), op("Split", side("client"), boolean(False)), flush(),
        ]),
        "owned-keep-echo": ops_input([
            op("Binary", side("client"), u16(3000), u8(9)), op("Text", side("client"), blob(b"echo me, "), u8(250)),
            deliver("server"), poll("server", 1, True, True),
            op("SendOwned", side("server"), boolean(False), u16(0), u8(0), option(u8(0))),
            op("SendOwned", side("server"), boolean(False), u16(0), u8(0), option(u8(1))),
            op("SendOwned", side("server"), boolean(True), u16(2500), u8(3), option(None)),
            transmit("server", 1000, 3), op("Binary", side("client"), u16(100), u8(1)), deliver("server"),
            poll("server", 0, True, True), flush(True), op("DropKept", side("server")), flush(True),
        ], max_send_frame=6000),
        "prepared-broadcast": ops_input([
            op("SendPrepared", side("server"), boolean(True), u16(3000), u8(1), option(u8(7))),
            op("SendPrepared", side("client"), boolean(False), u16(100), u8(1), option(None)),
            op("SendPrepared", side("server"), boolean(False), u16(50), u8(1), option(None)),
            flush(), op("Text", side("server"), blob(b"after the prepared one"), u8(20)), flush(),
        ], max_send_frame=4000, deflate=(deflate_opts(level=1), deflate_opts(level=1))),
        "streaming-toggled-mid-message": ops_input([
            op("Chunk", side("client"), boolean(False), blob(b"a" * 300), boolean(False)),
            op("Ping", side("client"), blob(b"mid")),
            op("Chunk", side("client"), boolean(False), blob(b"b" * 300), boolean(True)),
            op("Text", side("client"), blob(b"next"), u8(0)),
            deliver("server", 200), op("SetStreaming", side("server"), boolean(True)), poll("server"),
            op("SetStreaming", side("server"), boolean(False)), deliver("server"), drain("server"), flush(),
        ]),
        "errors-stay-after-failure": ops_input([
            op("Raw", side("server"), blob(bytes([0x81, 0x02, 0x68, 0x69]))), drain("server"),
            op("Text", side("server"), blob(b"x"), u8(0)), op("Ping", side("server"), blob(b"p")),
            close("server", 1000), op("SendOwned", side("server"), boolean(False), u16(10), u8(0), option(None)),
            flush(), advance(600), flush(),
        ]),
        "split-recv-transport-error": ops_input([
            op("Binary", side("server"), u16(3000), u8(5)), op("Split", side("server"), boolean(False)),
            op("TransportError", side("server"), half("recv")), transmit("server"), flush(),
        ]),
    }


def fixed_ops():
    """Inputs that each showed a way the library broke an invariant of
    `connection_ops`, all since fixed (see README)."""
    unmasked_to_server = blob(bytes([0x81, 0x02, 0x68, 0x69]))
    return {
        "ping-too-long-after-failure": ops_input([
            op("Raw", side("server"), unmasked_to_server), drain("server"),
            op("Ping", side("server"), blob(b"p" * 126)),
        ]),
        "prepared-over-send-frame-size": ops_input([
            op("SendPrepared", side("server"), boolean(False), u16(3000), u8(7), option(None)), transmit("server"),
        ], max_send_frame=999),
        "split-read-error-still-transmits": ops_input([
            op("Binary", side("server"), u16(3000), u8(5)), op("Split", side("server"), boolean(False)),
            op("TransportError", side("server"), half("recv")), transmit("server"),
        ]),
        "overcommit-takes-stale-bytes": ops_input([
            op("Binary", side("client"), u16(3000), u8(5)), transmit("client"), offer("server", 0xFFFF, 0, True),
            drain("server"), op("Binary", side("client"), u16(10), u8(6)), transmit("client"),
            offer("server", 0xFFFF, 0, True, 200),
        ], max_send_frame=4000),
        "peeked-closed-counts-as-returned": ops_input([
            op("Raw", side("server"), unmasked_to_server), peek("server"), transmit("server"),
        ]),
    }


def ops_dict():
    """libFuzzer dictionary entries for connection_ops: each operation's tag
    (the Vec's continue byte and the variant), and each side and half, so
    that a mutation can insert a whole new operation, a peek or a timer
    between two others, in one step."""
    entries = {"op-" + name.lower(): b"\x01" + variant(i, len(OPS)) for i, name in enumerate(OPS)}
    entries["client"] = side("client")
    entries["server"] = side("server")
    entries["recv-half"] = half("recv")
    entries["send-half"] = half("send")
    return entries


def write_dict(target, entries):
    path = os.path.join(HERE, "dict", target + ".dict")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("# Written by gen_corpus.py: the encodings of connection_ops' operations.\n")
        for name, data in entries.items():
            f.write(name.replace("-", "_") + '="' + "".join("\\x%02x" % b for b in data) + '"\n')
    print(f"dict/{target}.dict: {len(entries)} entries")


def write(target, seeds, folder="corpus", prefix="seed-"):
    directory = os.path.join(HERE, folder, target)
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.startswith(prefix):
            os.remove(os.path.join(directory, name))
    for name, data in seeds.items():
        with open(os.path.join(directory, prefix + name), "wb") as f:
            f.write(data)
    print(f"{folder}/{target}: {len(seeds)} inputs")


if __name__ == "__main__":
    write("frame_header", frame_seeds())
    write("server_handshake", server_seeds())
    write("client_handshake", client_seeds())
    write("connection_ops", ops_seeds())
    write("connection_ops", fixed_ops(), folder="regressions", prefix="fixed-")
    write_dict("connection_ops", ops_dict())

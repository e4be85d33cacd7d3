"""A Matroska (.mkv, .webm) file's durations set to its video's end once FFmpeg's muxer has written
them: FFmpeg counts each audio packet to its untrimmed end (the last one's DiscardPadding left out)
and, for sound with a codec delay, from before that delay is taken off (CodecDelay), so copied or
encoded sound made a clip, and its audio track's DURATION tag, read up to a packet and a codec
delay longer than its frames (1.79 s for 1.67 s of frames and sound).

Legend: an EBML element is an ID (1 to 4 bytes, its length marker kept), a size (a variable-length
integer, its marker cleared) and `size` bytes of data; a master element's data is elements. FFmpeg
starts each top-level master with a CRC-32 of the rest of its data (little-endian) in Matroska, none
in WebM.
"""
import re
import struct
import zlib

SEGMENT, INFO, TAGS = 0x18538067, 0x1549A966, 0x1254C367
TIMESTAMP_SCALE, DURATION, CRC32 = 0x2AD7B1, 0x4489, 0xBF      # Info's ns per tick, its length in ticks (float)
TAG, SIMPLE_TAG, TAG_NAME, TAG_STRING = 0x7373, 0x67C8, 0x45A3, 0x4487


def end_at(path, seconds):
    # the Matroska file at `path`: its Segment Duration, and each track's DURATION tag longer than
    # `seconds`, made `seconds`; what is not where FFmpeg writes it is left as it is
    with open(path, "r+b") as f:
        segment = next((e for e in elements(f, 0, None) if e[0] == SEGMENT), None)
        for ident, at, size in elements(f, segment[1], segment[1] + segment[2]) if segment else ():
            if ident == INFO:
                set_duration(f, (at, size), seconds)
            elif ident == TAGS:
                shorten_tags(f, (at, size), seconds)


def set_duration(f, info, seconds):
    # Info's Duration (a float of TimestampScale ns ticks) -> `seconds`
    found = {ident: (at, size) for ident, at, size in elements(f, info[0], sum(info))}
    if found.get(DURATION, (0, 0))[1] in (4, 8):
        scale = int.from_bytes(read_at(f, *found[TIMESTAMP_SCALE]), "big") if TIMESTAMP_SCALE in found else 10 ** 6
        at, size = found[DURATION]
        write_at(f, at, struct.pack(">d" if size == 8 else ">f", seconds * 1e9 / scale))
        check_again(f, info)


def shorten_tags(f, tags, seconds):
    # each DURATION tag ("HH:MM:SS.nnnnnnnnn", FFmpeg's, in a fixed 20 bytes) longer than `seconds` -> `seconds`
    new = f"{int(seconds) // 3600:02d}:{int(seconds) // 60 % 60:02d}:{seconds % 60:012.9f}".encode()
    for tag in (e for e in elements(f, tags[0], sum(tags)) if e[0] == TAG):
        for simple in (e for e in elements(f, tag[1], tag[1] + tag[2]) if e[0] == SIMPLE_TAG):
            found = {ident: (at, size) for ident, at, size in elements(f, simple[1], simple[1] + simple[2])}
            if TAG_NAME not in found or TAG_STRING not in found or read_at(f, *found[TAG_NAME]) != b"DURATION":
                continue
            at, size = found[TAG_STRING]
            old = tag_seconds(read_at(f, at, size).rstrip(b"\0").decode("ascii", "replace"))
            if size >= len(new) and (old is None or old > seconds):
                write_at(f, at, new.ljust(size, b"\0"))
    check_again(f, tags)


def tag_seconds(text):
    # a DURATION tag, "HH:MM:SS.nnnnnnnnn" -> seconds, None where it is not that (nst.video.clip reads
    # a stream's length so)
    found = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d*)?)", text.strip())
    return int(found[1]) * 3600 + int(found[2]) * 60 + float(found[3]) if found else None


def check_again(f, master):
    # a master element's (data start, size) CRC-32 made again, where its first element is one
    first = next(elements(f, master[0], sum(master)), None)
    if first and first[0] == CRC32 and first[2] == 4:
        rest = first[1] + 4
        write_at(f, first[1], struct.pack("<I", zlib.crc32(read_at(f, rest, sum(master) - rest))))


def elements(f, start, end):
    # -> (ID, where its data starts, its size) of each element from `start` to `end` (None: the file's end)
    pos = start
    while end is None or pos < end:
        head = read_at(f, pos, 12)
        if len(head) < 2 or not head[0]:
            return
        ident, n = number(head, 0, keep_marker=True)
        size, m = number(head, n)
        yield ident, pos + n + m, size
        pos += n + m + size


def number(data, at, keep_marker=False):
    # -> (the EBML variable-length integer at data[at], its length in bytes): the count of the first
    # byte's leading zeros + 1
    length = 9 - data[at].bit_length()
    value = int.from_bytes(data[at:at + length], "big")
    return (value if keep_marker else value & ((1 << (7 * length)) - 1)), length


def read_at(f, at, size):
    f.seek(at)
    return f.read(size)


def write_at(f, at, data):
    f.seek(at)
    f.write(data)

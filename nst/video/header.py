"""The length a video file's container says it has, read from its top-level structure (no FFmpeg):
a file shorter than that was cut short (a copy or a download that stopped), whatever its frames
decode to. MP4/MOV: the top-level boxes end to end; Matroska/WebM: the EBML header and the
Segment's declared size; AVI: the RIFF chunks end to end. None where the file declares no length
(a streamed Matroska's unknown size, an MP4 box running "to the end", another format). And whether
an AVI carries an index of its chunks (avi_indexed)."""
import os

EBML, SEGMENT = b"\x1a\x45\xdf\xa3", b"\x18\x53\x80\x67"
# the boxes an MP4 or MOV file holds at its top level (ISO/IEC 14496-12, QuickTime); a walk meeting
# another type stops there, taking it for bytes after the file's end
TOP_LEVEL_BOXES = {b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"moof", b"mfra",
                   b"meta", b"pdin", b"sidx", b"ssix", b"prft", b"emsg", b"junk", b"pnot", b"PICT"}


def cut_short(path):
    # -> (bytes in the file, bytes its header declares at least) when the file is shorter, else None
    # (a file that cannot be read: None, its reader says why)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            end = declared_end(f, size)
    except OSError:
        return None
    return (size, end) if end is not None and end > size else None


def declared_end(f, size):
    # -> where the file's container says it ends, None where it says nothing we read
    head = f.read(12)
    if head[4:8] == b"ftyp":
        return chunks_end(f, size, 0, box_header)
    if head[:4] == EBML:
        return ebml_end(f, size)
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return chunks_end(f, size, 0, riff_header)
    return None


def chunks_end(f, size, pos, read_header):
    # -> where the last of the chunks laid end to end from `pos` ends (past `size` when cut short);
    # None where one declares no length; bytes that are no chunk header end the walk (trailing bytes)
    while pos < size:
        f.seek(pos)
        length = read_header(f)
        if length is None:
            return None
        if not length:
            return pos
        pos += length
    return pos


def box_header(f):
    # a top-level ISO BMFF box -> its length in bytes (32-bit size, or 64-bit after size 1); None: "to
    # the end" (size 0); 0: no such box (too short, another type: bytes after the file's end)
    head = f.read(16)
    if len(head) < 8 or head[4:8] not in TOP_LEVEL_BOXES:
        return 0
    n = int.from_bytes(head[:4], "big")
    if n == 1 and len(head) == 16:
        n = int.from_bytes(head[8:16], "big")
    return None if n == 0 else n if n >= 8 else 0


def riff_header(f):
    # a RIFF chunk (an AVI's "RIFF" lists, "AVIX" ones past 1 GiB) -> its length with its header and
    # padding; 0: not a RIFF chunk
    head = f.read(8)
    if len(head) < 8 or head[:4] != b"RIFF":
        return 0
    n = int.from_bytes(head[4:8], "little")
    return 8 + n + (n & 1)


def ebml_end(f, size):
    # the EBML header element, then the Segment: -> where the Segment ends (the header's end and a
    # Segment ID when the file stops before them), None for an unknown size
    f.seek(4)
    n = vint(f)
    if n is None:
        return None
    segment = f.tell() + n
    f.seek(segment)
    if segment + len(SEGMENT) + 1 > size:
        return segment + len(SEGMENT) + 1
    n = vint(f) if f.read(4) == SEGMENT else None
    return None if n is None else f.tell() + n


def vint(f):
    # an EBML variable-length size -> its value, None for "unknown" (all ones) or a malformed one
    first = f.read(1)
    if not first or first[0] == 0:
        return None
    length = 9 - first[0].bit_length()
    value = first[0] & ((1 << (8 - length)) - 1)
    for b in f.read(length - 1):
        value = (value << 8) | b
    return None if value == (1 << (7 * length)) - 1 else value


def avi_indexed(path):
    # -> whether the AVI at `path` carries an index of its chunks: an idx1 chunk in its first RIFF,
    # or an OpenDML indx among its stream headers (a capture stopped before writing one has neither)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            is_avi = f.read(12)[8:12] == b"AVI "
            return is_avi and bool({b"idx1", b"indx"} & chunk_ids(f, 12, min(size, riff_header_end(f))))
    except OSError:
        return False


def riff_header_end(f):
    # -> where the first RIFF chunk ends (its header read at the file's start)
    f.seek(0)
    return riff_header(f)


def chunk_ids(f, pos, end):
    # -> the IDs of the chunks laid end to end from `pos` to `end`, those inside LIST hdrl and its
    # LIST strl too (the stream headers: an OpenDML indx is one), not inside LIST movi (the frames)
    ids = set()
    while pos + 8 <= end:
        f.seek(pos)
        head = f.read(12)
        n = int.from_bytes(head[4:8], "little")
        ids.add(head[:4])
        if head[:4] == b"LIST" and head[8:12] in (b"hdrl", b"strl"):
            ids |= chunk_ids(f, pos + 12, min(pos + 8 + n, end))
        pos += 8 + n + (n & 1)
    return ids

"""CIDs as raw bytes.

Inside the hot paths (CAR streaming, verification, inventories) a CID is the
binary CID (`cidv1 | codec | multihash`, or the bare multihash of a CIDv0):
hashing and comparing bytes is what makes 100k blocks/s possible. Strings
appear only at the edges, through `cid_str` and `parse_cid`.
"""

from __future__ import annotations

import hashlib

from libipld import decode_multibase, encode_multibase
from multiformats import CID as _MfCID

from ..errors import ArkeDrError

RAW = 0x55
DAG_PB = 0x70
DAG_CBOR = 0x71
DAG_JSON = 0x0129
LIBP2P_KEY = 0x72

IDENTITY = 0x00
SHA2_256 = 0x12
SHA2_512 = 0x13
SHA3_512 = 0x14
SHA3_256 = 0x16
BLAKE2B_256 = 0xB220

CODEC_NAMES = {RAW: "raw", DAG_PB: "dag-pb", DAG_CBOR: "dag-cbor", DAG_JSON: "dag-json"}
KNOWN_CODECS = frozenset(CODEC_NAMES)

MAX_DIGEST = 128
# Kubo (boxo's verifcid) refuses an identity CID whose "digest" (the data
# itself) is over 128 bytes; every other function here has one digest length.
MAX_IDENTITY = 128
DIGEST_LENGTH = {SHA2_256: 32, SHA2_512: 64, SHA3_256: 32, SHA3_512: 64, BLAKE2B_256: 32}


CidLike = bytes | str
"""The core's one CID type is the binary CID; text is accepted at the edges."""


class CIDError(ArkeDrError, ValueError):
    """A CID that cannot be parsed or does not match its block."""


def read_uvarint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode an unsigned LEB128 varint at `pos`; refuse more than 9 bytes."""
    value = 0
    shift = 0
    end = len(buf)
    for i in range(9):
        if pos >= end:
            raise CIDError("varint runs past the end of its buffer")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            if b == 0 and i > 0:
                raise CIDError("varint is not minimally encoded")
            return value, pos
        shift += 7
    raise CIDError("varint longer than 9 bytes")


def uvarint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def split_cid(buf: bytes | memoryview, pos: int = 0) -> tuple[int, int, int, int, int]:
    """Locate a binary CID at `pos`.

    Returns (end, codec, hash_code, digest_start, digest_len); `buf[pos:end]`
    is the CID. A CIDv0 is a bare sha2-256 multihash (0x12 0x20 ...).
    """
    avail = len(buf) - pos
    if avail >= 36 and buf[pos] == 1:
        # fast paths: CIDv1, sha2-256, one- or two-byte codec (0x0129 dag-json)
        c = buf[pos + 1]
        if c < 0x80 and buf[pos + 2] == 0x12 and buf[pos + 3] == 0x20:
            return pos + 36, c, SHA2_256, pos + 4, 32
        if c == 0xA9 and avail >= 37 and buf[pos + 2] == 0x02 and buf[pos + 3] == 0x12 and buf[pos + 4] == 0x20:
            return pos + 37, DAG_JSON, SHA2_256, pos + 5, 32
    if avail >= 34 and buf[pos] == 0x12 and buf[pos + 1] == 0x20:
        return pos + 34, DAG_PB, SHA2_256, pos + 2, 32
    version, p = read_uvarint(buf, pos)
    if version != 1:
        raise CIDError(f"unsupported CID version {version}")
    codec, p = read_uvarint(buf, p)
    hash_code, p = read_uvarint(buf, p)
    length, p = read_uvarint(buf, p)
    if length > MAX_DIGEST:
        raise CIDError(f"digest length {length} is too long")
    if p + length > len(buf):
        raise CIDError("CID digest runs past the end of its buffer")
    return p + length, codec, hash_code, p, length


def cid_codec(cid: bytes) -> int:
    return split_cid(cid)[1]


def digest_of(hash_code: int, data: bytes | memoryview) -> bytes:
    if hash_code == SHA2_256:
        return hashlib.sha256(data).digest()
    if hash_code == IDENTITY:
        return bytes(data)
    if hash_code == SHA2_512:
        return hashlib.sha512(data).digest()
    if hash_code == BLAKE2B_256:
        return hashlib.blake2b(data, digest_size=32).digest()
    if hash_code == SHA3_256:
        return hashlib.sha3_256(data).digest()
    if hash_code == SHA3_512:
        return hashlib.sha3_512(data).digest()
    raise CIDError(f"unsupported hash function 0x{hash_code:x}")


def check_block(cid: bytes, data: bytes | memoryview) -> None:
    """Raise CIDError unless `data` hashes to `cid`: the whole digest, at its
    function's own length (a truncated digest would "verify" bytes it was
    never made from, and Kubo refuses it anyway)."""
    _end, _codec, hash_code, start, length = split_cid(cid)
    if hash_code == IDENTITY:
        if length > MAX_IDENTITY:
            raise CIDError(f"identity CID of {length} bytes, over Kubo's {MAX_IDENTITY}")
    elif length != DIGEST_LENGTH.get(hash_code, length):
        raise CIDError(f"digest of {length} bytes, but hash function 0x{hash_code:x} makes "
                       f"{DIGEST_LENGTH[hash_code]}")
    if digest_of(hash_code, data) != cid[start : start + length]:
        raise CIDError("block bytes do not hash to their CID")


def make_cid(codec: int, data: bytes) -> bytes:
    """CIDv1 with sha2-256, the way Kubo names new blocks."""
    return b"\x01" + uvarint(codec) + b"\x12\x20" + hashlib.sha256(data).digest()


def is_identity(cid: bytes) -> bool:
    return split_cid(cid)[2] == IDENTITY


def cid_str(cid: bytes | str) -> str:
    """Kubo's spelling: base32 for CIDv1, base58btc for CIDv0. Text passes
    through, so the edges (the Kubo client, messages) take either form."""
    if isinstance(cid, str):
        return cid
    if cid[0] == 0x12:
        return str(_MfCID.decode(cid))
    return encode_multibase("b", cid if type(cid) is bytes else bytes(cid))


def cid_str_python(cid: bytes) -> str:
    """The reference `cid_str` is tested against. libipld (Rust) spells a CIDv1
    twenty times faster (0.15 µs against 3.5 µs), and an export or a restore
    spells every CID of the archive at least once: the inventory's rows."""
    if cid[0] == 0x12:
        return str(_MfCID.decode(cid))
    return "b" + _b32encode(cid)


_B32_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_OCTAL5_TO_B32: dict[str, str] | None = None


def _octal_table() -> dict[str, str]:
    """Built on first use and published whole: a snapshot build formats CIDs in
    two threads, and a table read while another thread filled it failed."""
    global _OCTAL5_TO_B32
    table = _OCTAL5_TO_B32
    if table is None:
        a = _B32_ALPHABET
        table = {format(v, "05o"): a[v >> 10] + a[(v >> 5) & 31] + a[v & 31] for v in range(1 << 15)}
        _OCTAL5_TO_B32 = table
    return table


def _b32encode(raw: bytes) -> str:
    """Unpadded lowercase base32, twice as fast as `base64.b32encode`: 15 bits are
    five octal digits from `format()` (C speed) and three base32 characters."""
    table = _OCTAL5_TO_B32 or _octal_table()
    chars = -(-len(raw) * 8 // 5)
    extra = -chars % 3
    value = int.from_bytes(raw, "big") << (chars * 5 - len(raw) * 8 + extra * 5)
    octal = format(value, "o").zfill((chars + extra) * 5 // 3)
    return "".join([table[octal[i : i + 5]] for i in range(0, len(octal), 5)])[:chars]


_RFC4648_TO_INT32 = str.maketrans("abcdefghijklmnopqrstuvwxyz234567", "0123456789abcdefghijklmnopqrstuv")
_B32_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz234567")


def _b32decode(body: str) -> bytes:
    """Unpadded lowercase base32 through int(): C speed, for millions of CIDs."""
    if not _B32_CHARS.issuperset(body):
        raise CIDError("not base32")
    nbytes = len(body) * 5 // 8
    pad = len(body) * 5 - nbytes * 8
    if pad >= 5:  # a character of padding alone: Go's decoder (Kubo's) refuses the length
        raise CIDError("not base32: no bytes have this length")
    value = int(body.translate(_RFC4648_TO_INT32), 32)
    if value & ((1 << pad) - 1):
        raise CIDError("non-zero padding bits")
    return (value >> pad).to_bytes(nbytes, "big")


def parse_cid(text: str) -> bytes:
    """Binary CID from its string form; CIDError on anything else.

    Kubo's own spelling, lowercase base32, is decoded by libipld (Rust, ten
    times faster: verification parses a CID text for every Arke link);
    `parse_cid_python` is the reference it is tested against. libipld reads
    base32 in either case, Kubo only in the case its prefix names, so text
    with a capital goes the reference's way."""
    if type(text) is str and len(text) > 1 and text[0] == "b" and text.islower():
        try:
            raw = decode_multibase(text)[1]
            end = split_cid(raw)[0]
        except (ValueError, IndexError):
            raise CIDError(f"not a CID: {text!r}") from None
        if end != len(raw):
            raise CIDError(f"not a CID: {text!r} (trailing bytes)")
        return raw
    return parse_cid_python(text)


def parse_cid_python(text: str) -> bytes:
    if not isinstance(text, str) or not text:
        raise CIDError(f"not a CID: {text!r}")
    try:
        if text[0] == "b" and len(text) > 1:
            raw = _b32decode(text[1:])
        else:
            raw = bytes(_MfCID.decode(text))
        end = split_cid(raw)[0]
    except CIDError:
        raise CIDError(f"not a CID: {text!r}") from None
    except Exception:
        raise CIDError(f"not a CID: {text!r}") from None
    if end != len(raw):
        raise CIDError(f"not a CID: {text!r} (trailing bytes)")
    return raw

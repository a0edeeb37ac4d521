"""Clearing the "open for writing" flags a killed SWMR writer leaves in the HDF5 superblock.

HDF5 marks a file as open for (SWMR) writing in the superblock and refuses to open it for writing
again until the flags are cleared; the library's own tool for this is ``h5clear -s``, which h5py
does not expose and which is not installed everywhere. A SWMR writer keeps the file consistent on
disk at every moment (that is what lets readers follow it), so after a crash only the flags are stale.

This does what ``h5clear -s --increment`` does for a version 2/3 superblock: clear the flags, move the
end-of-allocation address up to the end of the file (metadata flushed by the killed writer may
reference space allocated after the superblock was last written), and rewrite the superblock's
Jenkins lookup3 checksum. The stored checksum is verified first, so an unknown layout is refused
rather than patched.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MASK = 0xFFFFFFFF
# HDF5 looks for the superblock at 0, 512, 1024, 2048... (a user block may precede it).
_SEARCH_OFFSETS = (0, 512, 1024, 2048, 4096)


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _MASK


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle`` of ``data``, as HDF5 checksums its metadata."""
    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & _MASK
    pos = 0
    while length > 12:
        a = (a + int.from_bytes(data[pos:pos + 4], "little")) & _MASK
        b = (b + int.from_bytes(data[pos + 4:pos + 8], "little")) & _MASK
        c = (c + int.from_bytes(data[pos + 8:pos + 12], "little")) & _MASK
        a = (a - c) & _MASK; a ^= _rot(c, 4); c = (c + b) & _MASK  # noqa: E702
        b = (b - a) & _MASK; b ^= _rot(a, 6); a = (a + c) & _MASK  # noqa: E702
        c = (c - b) & _MASK; c ^= _rot(b, 8); b = (b + a) & _MASK  # noqa: E702
        a = (a - c) & _MASK; a ^= _rot(c, 16); c = (c + b) & _MASK  # noqa: E702
        b = (b - a) & _MASK; b ^= _rot(a, 19); a = (a + c) & _MASK  # noqa: E702
        c = (c - b) & _MASK; c ^= _rot(b, 4); b = (b + a) & _MASK  # noqa: E702
        length -= 12
        pos += 12
    if length == 0:
        return c
    tail = data[pos:pos + length] + bytes(12 - length)
    a = (a + int.from_bytes(tail[0:4], "little")) & _MASK
    b = (b + int.from_bytes(tail[4:8], "little")) & _MASK
    c = (c + int.from_bytes(tail[8:12], "little")) & _MASK
    c ^= b; c = (c - _rot(b, 14)) & _MASK  # noqa: E702
    a ^= c; a = (a - _rot(c, 11)) & _MASK  # noqa: E702
    b ^= a; b = (b - _rot(a, 25)) & _MASK  # noqa: E702
    c ^= b; c = (c - _rot(b, 16)) & _MASK  # noqa: E702
    a ^= c; a = (a - _rot(c, 4)) & _MASK  # noqa: E702
    b ^= a; b = (b - _rot(a, 14)) & _MASK  # noqa: E702
    c ^= b; c = (c - _rot(b, 24)) & _MASK  # noqa: E702
    return c


@dataclass(frozen=True)
class Superblock:
    """The fields of a version 2/3 superblock that crash handling needs."""

    offset: int
    version: int
    flags: int
    base: int
    eoa: int
    size_of_offsets: int
    raw: bytes

    @property
    def body_len(self) -> int:
        return 12 + 4 * self.size_of_offsets


def read_superblock(path: Path | str) -> Superblock:
    """Parse and checksum-verify the superblock of ``path``.

    Raises ``ValueError`` if there is none, it is older than version 2 (no consistency flags, no
    checksum) or its checksum does not verify.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        for offset in _SEARCH_OFFSETS:
            fh.seek(offset)
            if fh.read(8) == _SIGNATURE:
                break
        else:
            raise ValueError(f"{path}: no HDF5 superblock found")
        head = fh.read(4)
        if len(head) < 4:
            raise ValueError(f"{path}: superblock is truncated")
        version, size_of_offsets = head[0], head[1]
        if version < 2:
            raise ValueError(f"{path}: superblock version {version} has no consistency flags")
        fmt = {4: "<I", 8: "<Q"}.get(size_of_offsets)
        if fmt is None:
            raise ValueError(f"{path}: unsupported address size {size_of_offsets}")
        body_len = 12 + 4 * size_of_offsets
        fh.seek(offset)
        raw = fh.read(body_len + 4)
    if len(raw) < body_len + 4:
        raise ValueError(f"{path}: superblock is truncated")
    (stored,) = struct.unpack_from("<I", raw, body_len)
    if lookup3(raw[:body_len]) != stored:
        raise ValueError(f"{path}: superblock checksum does not match")
    base = struct.unpack_from(fmt, raw, 12)[0]
    eoa = struct.unpack_from(fmt, raw, 12 + 2 * size_of_offsets)[0]
    return Superblock(offset, version, raw[11], base, eoa, size_of_offsets, raw)


def clear_write_flags(path: Path | str) -> bool:
    """Clear a version 2/3 superblock's open-for-writing flags; ``True`` if anything was changed.

    Raises ``ValueError`` as ``read_superblock`` does.
    """
    path = Path(path)
    sb = read_superblock(path)
    fmt = "<I" if sb.size_of_offsets == 4 else "<Q"
    new_eoa = max(sb.eoa, path.stat().st_size - sb.base)
    if sb.flags == 0 and new_eoa == sb.eoa:
        return False
    block = bytearray(sb.raw)
    block[11] = 0
    struct.pack_into(fmt, block, 12 + 2 * sb.size_of_offsets, new_eoa)
    struct.pack_into("<I", block, sb.body_len, lookup3(bytes(block[:sb.body_len])))
    with open(path, "r+b") as fh:
        fh.seek(sb.offset)
        fh.write(block)
        fh.flush()
        os.fsync(fh.fileno())
    return True

"""Tell what kind of model file an artifact is, without ever deserialising it.

Pickle-based files are read with `pickletools.genops`, which walks opcodes without executing them:
the modules named by GLOBAL / STACK_GLOBAL opcodes say whether it is a scikit-learn estimator or a
joblib dump. Compressed joblib files are decompressed (bounded) first.
"""

from __future__ import annotations

import bz2
import lzma
import pickletools
import zlib
from collections.abc import Iterator

from keel.domain.registry import ArtifactFlavor

# Enough of a file to see its top-level classes; estimators name their module in the first opcodes.
_SCAN_BYTES = 8 * 1024 * 1024


def _decompressed(head: bytes) -> bytes:
    try:
        if head.startswith(b"\x1f\x8b"):
            # wbits 16+MAX: a gzip header; decompressobj tolerates the truncated head we pass.
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, _SCAN_BYTES)
        if head.startswith(b"\xfd7zXZ"):
            return lzma.LZMADecompressor().decompress(head, _SCAN_BYTES)
        if head.startswith(b"BZh"):
            return bz2.BZ2Decompressor().decompress(head, _SCAN_BYTES)
        if head[:1] == b"\x78" and head[1:2] in (b"\x01", b"\x5e", b"\x9c", b"\xda"):
            return zlib.decompressobj().decompress(head, _SCAN_BYTES)
    except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError):
        return b""
    return head


def _pickle_globals(data: bytes) -> Iterator[str]:
    """Module names referenced by a pickle stream; stops quietly where the bytes stop."""
    strings: list[str] = []
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE") and isinstance(
                arg, str
            ):
                strings.append(arg)
            elif opcode.name == "GLOBAL" and isinstance(arg, str):
                yield arg.split(" ", 1)[0]
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                yield strings[-2]
    except (ValueError, EOFError, UnicodeDecodeError):
        return


def detect_flavor(head: bytes, filename: str = "") -> ArtifactFlavor:
    """Classify a model file from its first bytes (and name, for formats without magic).

    >>> import pickle
    >>> detect_flavor(pickle.dumps({"a": 1}))
    <ArtifactFlavor.PICKLE: 'pickle'>
    >>> detect_flavor(b"\\x08\\x07\\x12\\x07pytorch", "model.onnx")
    <ArtifactFlavor.ONNX: 'onnx'>
    >>> detect_flavor(b"PK\\x03\\x04...", "model.skops")
    <ArtifactFlavor.SKOPS: 'skops'>
    >>> detect_flavor(b"PK\\x03\\x04...", "model.pt")
    <ArtifactFlavor.OTHER: 'other'>
    >>> detect_flavor(b"hello", "notes.txt")
    <ArtifactFlavor.OTHER: 'other'>
    """
    data = _decompressed(head)
    if data[:1] == b"\x80" or data.startswith(b"(") or data.startswith(b"}"):
        modules = {m.split(".", 1)[0] for m in _pickle_globals(data)}
        if "sklearn" in modules:
            return ArtifactFlavor.SKLEARN
        if "joblib" in modules:
            return ArtifactFlavor.JOBLIB
        if data[:1] == b"\x80":
            return ArtifactFlavor.PICKLE
    # skops files are zip archives (so are PyTorch's, which stay OTHER): the name says which.
    if head.startswith(b"PK\x03\x04") and filename.lower().endswith(".skops"):
        return ArtifactFlavor.SKOPS
    # ONNX files are protobuf without a magic number; the ModelProto starts with the
    # ir_version field (tag 0x08), so the name plus that byte is the best cheap evidence.
    if filename.lower().endswith(".onnx") and head[:1] == b"\x08":
        return ArtifactFlavor.ONNX
    return ArtifactFlavor.OTHER

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


def _ends_with_stop(data: bytes) -> bool:
    """Whether the bytes decode as pickle opcodes up to a STOP (protocols 0 and 1 have no
    header). Decoding only: nothing is executed."""
    try:
        return any(op.name == "STOP" for op, _, _ in pickletools.genops(data))
    except (ValueError, EOFError, UnicodeDecodeError):
        return False


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
    if data[:1] == b"\x80" or data.startswith((b"(", b"}", b"c")) or _ends_with_stop(data):
        modules = {m.split(".", 1)[0] for m in _pickle_globals(data)}
        if "sklearn" in modules:
            return ArtifactFlavor.SKLEARN
        if "joblib" in modules:
            return ArtifactFlavor.JOBLIB
        if data[:1] == b"\x80" or _ends_with_stop(data):
            return ArtifactFlavor.PICKLE
    # skops files are zip archives (so are PyTorch's, which stay OTHER): the name says which.
    if head.startswith(b"PK\x03\x04") and filename.lower().endswith(".skops"):
        return ArtifactFlavor.SKOPS
    # ONNX files are protobuf without a magic number; the ModelProto starts with the
    # ir_version field (tag 0x08), so the name plus that byte is the best cheap evidence.
    if filename.lower().endswith(".onnx") and head[:1] == b"\x08":
        return ArtifactFlavor.ONNX
    return ArtifactFlavor.OTHER


# What registration accepts, for the error that refuses anything else.
ACCEPTED_FORMATS = (
    "a scikit-learn model saved with joblib.dump or pickle",
    "a skops file (.skops)",
    "an ONNX model (.onnx)",
)
_DATA_SUFFIXES = {
    ".csv": "CSV",
    ".tsv": "TSV",
    ".txt": "plain text",
    ".json": "JSON",
    ".jsonl": "JSON lines",
    ".parquet": "Parquet",
    ".md": "plain text",
    ".yaml": "YAML",
    ".yml": "YAML",
}


def _text(head: bytes) -> str | None:
    """The head as text if it is UTF-8 without NUL bytes (a cut-off last character allowed)."""
    if b"\x00" in head:
        return None
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3 and exc.reason == "unexpected end of data":
            return head[: exc.start].decode("utf-8")
        return None


def _looks_like_csv(text: str) -> bool:
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    if len(lines) < 2:
        return False
    complete = lines[:-1] if len(lines) > 2 else lines  # the last line may be cut off
    for delimiter in (",", "\t", ";", "|"):
        counts = {line.count(delimiter) for line in complete}
        if len(counts) == 1 and counts.pop() >= 1:
            return True
    return False


def data_format(head: bytes, filename: str = "") -> str | None:
    """The data format of a file that is recognisably not a model (Parquet, JSON, CSV, text),
    or None. Pickles, zips (skops, PyTorch) and other binary files are never called data.

    >>> data_format(b"PAR1\\x15\\x04")
    'Parquet'
    >>> data_format(b"age,income\\n31,52000\\n45,61000\\n", "model.pkl")
    'CSV'
    >>> data_format(b'{"coef": [0.1, 0.2]}')
    'JSON'
    >>> data_format(b"weights", "model.pkl") is None
    True
    """
    if head.startswith(b"PAR1"):
        return "Parquet"
    if detect_flavor(head, filename) != ArtifactFlavor.OTHER:
        return None
    text = _text(head)
    if text is None:
        return None
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped[:1] in ("{", "["):
        import json

        try:
            json.loads(stripped)
            return "JSON"
        except ValueError:
            if len(head) >= _SCAN_BYTES:  # cut off: judge by its start
                return "JSON"
    if _looks_like_csv(stripped):
        return "CSV"
    suffix = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return _DATA_SUFFIXES.get(suffix)

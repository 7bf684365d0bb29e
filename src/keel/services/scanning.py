"""The security scan of an artifact at upload: does loading it run code it should not?

The judgement is fickling's (Trail of Bits' static pickle analyser): it interprets the pickle's
opcodes symbolically, never executing them, and reports imports and calls that can run code. Keel
adds two things fickling does not do, and nothing else:

1. **Joblib files.** ``joblib.dump`` writes each NumPy array's raw bytes *between* pickle opcodes
   (right after the ``BUILD`` of a ``NumpyArrayWrapper``), and object arrays as a nested pickle.
   fickling reads the raw bytes as opcodes, stops with "invalid opcode", and never sees the rest of
   the file. `pickle_streams` walks the opcodes with `pickletools.genops` (which decodes, never
   executes), tracks just enough values to read each wrapper's shape and dtype, skips exactly the
   array bytes, and hands fickling the whole opcode stream plus every nested pickle. Anything it
   cannot account for makes the artifact unsafe: it fails closed.
2. **An allowlist.** fickling flags every import outside the standard library ("a module that is
   not part of the standard library ... is inherently unsafe") and every call of such an import, so
   every scikit-learn model would fail. Keel dismisses exactly those two kinds of findings when the
   import comes from the modules whose pickled globals rebuild model state (scikit-learn, NumPy,
   SciPy, joblib's array wrapper), minus sub-modules and functions that read files, compile or
   run code.
   fickling's other analyses (``os``/``subprocess``/``builtins`` imports, ``eval``/``exec`` calls,
   ML-specific dangerous modules, malformed streams) are never dismissed.

Flavors that are not pickles (ONNX, unknown bytes) cannot run code through unpickling; their report
says "not a pickle" and is safe in that sense only. Keel's evaluator loads only pickle flavors.
"""

from __future__ import annotations

import ast
import bz2
import io
import lzma
import math
import pickletools
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import fickling
import numpy as np
from fickling.analysis import Severity, check_safety
from fickling.fickle import Pickled

from keel.domain.evaluation import ScanFinding, ScanReport
from keel.domain.registry import Artifact, ArtifactFlavor
from keel.store.artifacts import ArtifactStore
from keel.store.sql.evaluation import SqlEvaluationStore

SCANNER = "fickling"
SCANNER_VERSION = str(fickling.__version__)
SAFE = Severity.LIKELY_SAFE.name
# Decompressed joblib files larger than this are refused as unscannable (a decompression bomb).
MAX_DECOMPRESSED_BYTES = 4 << 30

# Modules whose globals a scikit-learn pickle names to rebuild estimators, arrays and sparse
# matrices. Prefix match on the dotted module name.
ALLOWED_MODULES = ("sklearn", "numpy", "scipy", "joblib.numpy_pickle")
# Parts of those packages that touch files, compile or run code: never allowed.
DENIED_MODULES = (
    "numpy.f2py",
    "numpy.distutils",
    "numpy.testing",
    "numpy.ctypeslib",
    "numpy.lib.npyio",
    "numpy.lib.format",
    "scipy.io",
    "scipy.weave",
    "sklearn.externals",
    "sklearn.datasets",
)
DENIED_NAMES = frozenset(
    {
        "load",
        "loads",
        "loadtxt",
        "genfromtxt",
        "fromfile",
        "fromregex",
        "memmap",
        "open",
        "save",
        "savez",
        "savez_compressed",
        "savetxt",
        "tofile",
        "eval",
        "exec",
        "compile",
        "system",
        "run",
        "call",
        "runstring",
        "get_include",
    }
)
_JOBLIB_WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"
_JOBLIB_WRAPPER_IMPORT = "from joblib.numpy_pickle import NumpyArrayWrapper"
_ROOT_NAME = re.compile(r"^([A-Za-z_]\w*)")


class Unscannable(Exception):
    """The bytes are not a pickle Keel can account for: truncated, corrupt or unsupported."""


def _module_allowed(module: str, name: str) -> bool:
    def under(prefix: str) -> bool:
        return module == prefix or module.startswith(prefix + ".")

    return (
        any(under(p) for p in ALLOWED_MODULES)
        and not any(under(p) for p in DENIED_MODULES)
        and name not in DENIED_NAMES
    )


# -- splitting a (joblib) pickle file into the pickle streams it holds ------------------------


@dataclass
class _Global:
    name: str


@dataclass
class _Obj:
    made_by: str | None
    args: Any
    state: Any = None


class _Unknown:
    pass


_UNKNOWN = _Unknown()
_MARK = object()
_CONSTANTS = frozenset(
    {
        "INT",
        "BININT",
        "BININT1",
        "BININT2",
        "LONG",
        "LONG1",
        "LONG4",
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
        "BINBYTES",
        "SHORT_BINBYTES",
        "BINBYTES8",
        "UNICODE",
        "SHORT_BINUNICODE",
        "BINUNICODE",
        "BINUNICODE8",
        "FLOAT",
        "BINFLOAT",
        "BYTEARRAY8",
    }
)


class _Stack:
    """Values as far as the scan needs them; everything else is ``_UNKNOWN``."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.memo: dict[Any, Any] = {}

    def pop(self) -> Any:
        if not self.items:
            raise Unscannable("the pickle pops from an empty stack (a malformed opcode sequence)")
        return self.items.pop()

    def pop_to_mark(self) -> list[Any]:
        popped: list[Any] = []
        while True:
            item = self.pop()
            if item is _MARK:
                return popped[::-1]
            popped.append(item)

    def step(self, name: str, arg: Any, op: pickletools.OpcodeInfo) -> None:
        push = self.items.append
        if name in _CONSTANTS:
            push(arg)
        elif name == "NONE":
            push(None)
        elif name in ("NEWTRUE", "NEWFALSE"):
            push(name == "NEWTRUE")
        elif name == "MARK":
            push(_MARK)
        elif name == "EMPTY_TUPLE":
            push(())
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            push(tuple(reversed([self.pop() for _ in range(n)])))
        elif name == "TUPLE":
            push(tuple(self.pop_to_mark()))
        elif name == "EMPTY_LIST":
            push([])
        elif name == "EMPTY_DICT":
            push({})
        elif name == "DICT":
            items = self.pop_to_mark()
            push(self._dict(items))
        elif name == "SETITEM":
            value, key = self.pop(), self.pop()
            self._setitems([key, value])
        elif name == "SETITEMS":
            self._setitems(self.pop_to_mark())
        elif name == "APPEND":
            self.pop()
        elif name == "APPENDS":
            self.pop_to_mark()
        elif name == "GLOBAL":
            module, _, attr = str(arg).partition(" ")
            push(_Global(f"{module}.{attr}"))
        elif name == "STACK_GLOBAL":
            attr, module = self.pop(), self.pop()
            ok = isinstance(module, str) and isinstance(attr, str)
            push(_Global(f"{module}.{attr}") if ok else _UNKNOWN)
        elif name in ("REDUCE", "NEWOBJ"):
            args, made_by = self.pop(), self.pop()
            push(_Obj(made_by.name if isinstance(made_by, _Global) else None, args))
        elif name == "NEWOBJ_EX":
            _kwargs, args, made_by = self.pop(), self.pop(), self.pop()
            push(_Obj(made_by.name if isinstance(made_by, _Global) else None, args))
        elif name == "BUILD":
            state = self.pop()
            if not self.items:
                raise Unscannable("BUILD without an object to build (a malformed opcode sequence)")
            if isinstance(self.items[-1], _Obj):
                self.items[-1].state = state
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = self.items[-1] if self.items else _UNKNOWN
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            self.memo[arg] = self.items[-1] if self.items else _UNKNOWN
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            push(self.memo.get(arg, _UNKNOWN))
        elif name == "POP":
            self.pop()
        elif name == "POP_MARK":
            self.pop_to_mark()
        elif name == "DUP":
            push(self.items[-1] if self.items else _UNKNOWN)
        elif name in ("PROTO", "FRAME", "STOP"):
            pass
        else:  # generic: pop what the opcode consumes, push unknowns for what it produces
            if pickletools.markobject in op.stack_before:
                self.pop_to_mark()
            else:
                for _ in op.stack_before:
                    self.pop()
            for _ in op.stack_after:
                push(_UNKNOWN)

    @staticmethod
    def _dict(items: list[Any]) -> Any:
        try:
            return dict(zip(items[::2], items[1::2], strict=True))
        except (TypeError, ValueError):
            return _UNKNOWN

    def _setitems(self, items: list[Any]) -> None:
        if not self.items:
            raise Unscannable("SETITEMS without a dict (a malformed opcode sequence)")
        target = self.items[-1]
        if isinstance(target, dict):
            try:
                target.update(zip(items[::2], items[1::2], strict=True))
            except (TypeError, ValueError):
                self.items[-1] = _UNKNOWN


def _array_bytes_end(data: bytes, pos: int, state: Any, streams: list[bytes]) -> int:
    """Where the raw bytes of a joblib-wrapped array that start at ``pos`` end."""
    if not isinstance(state, dict):
        raise Unscannable("a joblib array wrapper without a readable state")
    shape, dtype = state.get("shape"), state.get("dtype")
    if not (isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape)):
        raise Unscannable("a joblib array wrapper whose shape Keel cannot read")
    if not (isinstance(dtype, _Obj) and isinstance(dtype.args, tuple) and dtype.args):
        raise Unscannable("a joblib array wrapper whose dtype Keel cannot read")
    descr = dtype.args[0]
    # numpy's dtype state: (version, byte order, subarray, names, fields, elsize, alignment, flags)
    dstate = dtype.state if isinstance(dtype.state, tuple) else ()
    if not isinstance(descr, str) or len(dstate) < 8 or not isinstance(dstate[7], int):
        raise Unscannable("a joblib array whose dtype Keel cannot read")
    if dstate[7] & 1 or descr.startswith("O"):  # NPY_ITEM_HASOBJECT
        # Arrays holding Python objects are a nested pickle stream: scan it like the outer one.
        return _split(data, pos, streams)
    elsize = dstate[5] if isinstance(dstate[5], int) else -1
    try:
        itemsize = elsize if elsize > 0 else np.dtype(descr).itemsize
    except TypeError:
        raise Unscannable(f"a joblib array with an unknown dtype {descr!r}") from None
    end = pos
    if state.get("numpy_array_alignment_bytes") is not None:
        if pos >= len(data):
            raise Unscannable("the file ends inside a joblib array (truncated)")
        end += 1 + data[pos]
    end += math.prod(shape) * itemsize
    if end > len(data):
        raise Unscannable("the file ends inside a joblib array's data (truncated)")
    return end


def _split(data: bytes, start: int, streams: list[bytes]) -> int:
    """Append the opcode bytes of the pickle starting at ``start`` to ``streams`` (nested ones
    after it); return where it ends (after STOP)."""
    stream = io.BytesIO(data)
    stream.seek(start)
    stack = _Stack()
    opcodes = bytearray()
    index = len(streams)
    streams.append(b"")
    nested: list[bytes] = []
    while True:
        segment = stream.tell()
        resume: int | None = None
        try:
            for op, arg, _pos in pickletools.genops(stream):
                stack.step(op.name, arg, op)
                if op.name == "STOP":
                    opcodes += data[segment : stream.tell()]
                    streams[index] = bytes(opcodes)
                    streams.extend(nested)
                    return stream.tell()
                top = stack.items[-1] if stack.items else None
                if op.name == "BUILD" and isinstance(top, _Obj) and top.made_by == _JOBLIB_WRAPPER:
                    opcodes += data[segment : stream.tell()]
                    resume = _array_bytes_end(data, stream.tell(), top.state, nested)
                    break
        except ValueError as exc:
            raise Unscannable(f"the pickle stream is truncated or corrupt ({exc})") from None
        if resume is None:
            raise Unscannable("the pickle stream ends without a STOP opcode (truncated)")
        stream.seek(resume)


def pickle_streams(data: bytes) -> list[bytes]:
    """The pickle opcode streams in a pickle or joblib file, joblib's raw array bytes left out.

    Raises `Unscannable` for bytes that are truncated, corrupt, or followed by trailing data.

    >>> import pickle
    >>> pickle_streams(pickle.dumps([1, 2])) == [pickle.dumps([1, 2])]
    True
    """
    streams: list[bytes] = []
    end = _split(data, 0, streams)
    if end != len(data):
        raise Unscannable(
            f"{len(data) - end} bytes follow the end of the pickle stream; a model file holds "
            "one pickle"
        )
    return streams


# -- decompression ------------------------------------------------------------------------------


def _decompress(data: bytes) -> bytes:
    """joblib's compressed formats are standard zlib/gzip/bz2/xz/lzma streams."""
    decompressors: list[tuple[bool, Callable[[], Any]]] = [
        (data.startswith(b"\x1f\x8b"), lambda: zlib.decompressobj(16 + zlib.MAX_WBITS)),
        (data.startswith(b"\xfd7zXZ"), lzma.LZMADecompressor),
        (data.startswith(b"BZh"), bz2.BZ2Decompressor),
        (
            data[:1] == b"\x78" and data[1:2] in (b"\x01", b"\x5e", b"\x9c", b"\xda"),
            zlib.decompressobj,
        ),
        (data[:1] == b"\x5d" and data[1:3] == b"\x00\x00", lzma.LZMADecompressor),
    ]
    for matches, make in decompressors:
        if matches:
            try:
                out = make().decompress(data, MAX_DECOMPRESSED_BYTES + 1)
            except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError) as exc:
                raise Unscannable(f"the compressed file is corrupt ({exc})") from None
            if len(out) > MAX_DECOMPRESSED_BYTES:
                raise Unscannable(
                    f"the file decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes"
                )
            return bytes(out)
    return data


# -- the scan -----------------------------------------------------------------------------------


def _allowed_imports(pickled: Pickled) -> tuple[set[str], set[str]]:
    """(the import statements and the names) that the allowlist accepts, in one stream."""
    statements: set[str] = set()
    names: set[str] = set()
    for node in pickled.properties.imports:
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and all(_module_allowed(node.module, a.name) for a in node.names)
        ):
            statements.add(ast.unparse(node))
            names.update(a.asname or a.name for a in node.names)
    return statements, names


def _judge(stream: bytes) -> tuple[list[ScanFinding], set[str]]:
    """fickling's findings on one pickle stream, minus those the allowlist dismisses."""
    try:
        pickled = Pickled.load(stream, fail_on_decode_error=True)
    except Exception as exc:  # fickling raises its own decode errors and ValueError
        raise Unscannable(f"fickling could not decode the pickle ({exc})") from None
    results = check_safety(pickled)
    statements, names = _allowed_imports(pickled)
    findings: list[ScanFinding] = []
    allowed: set[str] = set()
    for result in results.results:
        if result.severity == Severity.LIKELY_SAFE:
            continue
        trigger = str(result.trigger or "")
        if result.analysis_name == "NonStandardImports" and trigger in statements:
            allowed.add(trigger)
            continue
        if result.analysis_name == "UnsafeImports" and trigger == _JOBLIB_WRAPPER_IMPORT:
            # fickling lists all of joblib as unsafe (joblib.load unpickles); its array wrapper
            # only carries shape and dtype, and its bytes were walked above.
            allowed.add(trigger)
            continue
        root = _ROOT_NAME.match(trigger)
        if (
            result.analysis_name == "OvertlyBadEval"
            and result.severity == Severity.LIKELY_UNSAFE
            and root is not None
            and root.group(1) in names
        ):
            continue  # calling a class or reconstructor imported from an allowed module
        findings.append(ScanFinding(result.severity.name, str(result)))
    return findings, allowed


def scan_bytes(data: bytes, sha256: str, flavor: ArtifactFlavor) -> ScanReport:
    """Scan an artifact's bytes without executing any of them.

    Pickle flavors are always scanned as pickles; other flavors are scanned as pickles too when
    their bytes parse as one (a pickle renamed ``.onnx`` is still a pickle).
    """
    findings: list[ScanFinding] = []
    allowed: set[str] = set()
    pickle_flavor = flavor in (ArtifactFlavor.SKLEARN, ArtifactFlavor.JOBLIB, ArtifactFlavor.PICKLE)
    try:
        streams = pickle_streams(_decompress(data))
    except Unscannable as exc:
        if pickle_flavor:
            findings.append(ScanFinding(Severity.LIKELY_UNSAFE.name, f"Not loadable: {exc}."))
        else:
            findings.append(
                ScanFinding(
                    SAFE,
                    f"Not a pickle (flavor {flavor}): loading it cannot run code through "
                    "unpickling. Keel does not evaluate this flavor.",
                )
            )
        streams = []
    try:
        for stream in streams:
            stream_findings, stream_allowed = _judge(stream)
            findings.extend(stream_findings)
            allowed |= stream_allowed
    except Unscannable as exc:
        findings.append(ScanFinding(Severity.LIKELY_UNSAFE.name, f"Not loadable: {exc}."))
    if allowed:
        findings.append(
            ScanFinding(
                SAFE,
                "Imports from modules on Keel's allowlist of model-state modules: "
                + "; ".join(sorted(allowed)),
            )
        )
    return ScanReport(
        sha256=sha256,
        scanner=SCANNER,
        scanner_version=SCANNER_VERSION,
        safe=all(f.severity == SAFE for f in findings),
        findings=tuple(findings),
        scanned_at=datetime.now(UTC),
    )


class ArtifactScanner:
    """Scans each stored artifact once, by SHA-256, and records the report (audited)."""

    def __init__(self, store: SqlEvaluationStore, artifacts: ArtifactStore) -> None:
        self.store = store
        self.artifacts = artifacts

    def scan(self, artifact: Artifact, actor: str) -> ScanReport:
        """The artifact's scan report, scanning its verified stored bytes if not done yet."""
        existing = self.store.get_scan(artifact.sha256)
        if existing is not None:
            return existing
        data = b"".join(self.artifacts.iter_verified(artifact.sha256))
        return self.store.save_scan(scan_bytes(data, artifact.sha256, artifact.flavor), actor)

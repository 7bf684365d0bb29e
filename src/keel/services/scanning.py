"""The security scan of an artifact at upload: can loading it run code it should not?

Nothing is ever unpickled or loaded to find out. How an artifact is judged depends on its flavor,
which is how Keel would load it:

- **``sklearn`` and ``joblib``** (loaded with ``joblib.load``) and **``pickle``** (loaded with
  ``pickle.load``) are walked opcode by opcode (`keel.services.pickle_opcodes`), with joblib's
  semantics for the first two: compressed files are decompressed exactly where joblib would
  (same magic bytes; nothing may follow the compressed stream), NumPy array bytes are skipped
  exactly as joblib reads them (the dtype rebuilt by NumPy, so a forged ``elsize`` cannot move
  the boundary), and object arrays are walked as the nested pickles they are. **The gate is
  Keel's allowlist** (`keel.services.pickle_allowlist`): every global the file names must be a
  model-state class of scikit-learn, NumPy or SciPy, or one of a short list of reviewed
  reconstructor functions. Anything else (``os.system``, ``subprocess``, ``builtins.eval``,
  ``pathlib.Path.write_text``, ``imp.load_source``, ``importlib``, ``runpy``, ``marshal``,
  ``ctypes``, ``socket``, a function of an allowed package such as
  ``sklearn.utils._testing.check_output`` ...) makes the artifact unsafe, as does a name built
  on the stack, a call of something that is not a named global, an extension-registry or
  persistent-id reference, and any stream Keel cannot account for byte by byte (truncated,
  corrupt, trailing data, an unknown opcode): the scan fails closed.
- **fickling** (Trail of Bits' static pickle analyser) is a second opinion on every stream: its
  findings about globals the allowlist accepts are dismissed as false positives, every other
  finding makes the artifact unsafe. It never makes an artifact safe: a stream fickling cannot
  decode (it does not know protocol 5's ``BYTEARRAY8``) is still judged by the allowlist.
- **``onnx``** is safe when the bytes parse as an ONNX ``ModelProto`` (protobuf: no code) that
  stores no tensor in external files. **``skops``** is safe when the bytes are a zip whose
  ``schema.json`` is a valid skops schema and skops reports no untrusted type in it (the types
  skops' loader would refuse by default). Both formats load without running code.
- **Anything else** (flavor ``other``: a PyTorch-style zip holding ``data.pkl``, unknown bytes) is
  "not scanned" and **not safe**: Keel does not call safe what it did not scan.
"""

from __future__ import annotations

import _compat_pickle
import ast
import bz2
import io
import lzma
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import fickling
from fickling.analysis import Severity, check_safety
from fickling.fickle import Pickled

from keel.domain.evaluation import ScanFinding, ScanReport
from keel.domain.registry import Artifact, ArtifactFlavor
from keel.services.pickle_allowlist import is_allowed
from keel.services.pickle_opcodes import Global, Unscannable, Walk, pickle_streams
from keel.store.artifacts import ArtifactStore
from keel.store.sql.evaluation import SqlEvaluationStore

SCANNER = "keel"
# Bump the first number whenever the rules change: stored reports of older rules are redone.
SCANNER_VERSION = f"2; fickling {fickling.__version__}"
SAFE = Severity.LIKELY_SAFE.name
UNSAFE = Severity.LIKELY_UNSAFE.name
# Decompressed joblib files larger than this are refused as unscannable (a decompression bomb).
MAX_DECOMPRESSED_BYTES = 4 << 30
_ROOT_NAME = re.compile(r"^([A-Za-z_]\w*)")
_PICKLE_FLAVORS = frozenset({"sklearn", "joblib", "pickle"})
# fickling analyses whose findings are about imports and calls; dismissed for allowed globals.
_IMPORT_ANALYSES = frozenset({"NonStandardImports", "UnsafeImports", "UnsafeImportsML"})

__all__ = [
    "SCANNER",
    "SCANNER_VERSION",
    "ArtifactScanner",
    "Unscannable",
    "current_report",
    "scan_bytes",
]


# -- decompression, as joblib does it ---------------------------------------------------------


def _decompress(data: bytes) -> bytes:
    """joblib's compressed formats, chosen by the same magic bytes as
    ``joblib.numpy_pickle_utils._detect_compressor``; one whole stream, nothing after it."""
    if data.startswith(b"ZF"):
        raise Unscannable("a joblib file in the format of joblib before 0.9.3, which Keel refuses")
    if data.startswith(b"\x04\x22\x4d\x18"):
        raise Unscannable("an lz4-compressed joblib file, which Keel cannot scan")
    decompressors: list[tuple[bytes, Callable[[], Any]]] = [
        (b"\x78", zlib.decompressobj),
        (b"\x1f\x8b", lambda: zlib.decompressobj(16 + zlib.MAX_WBITS)),
        (b"BZ", bz2.BZ2Decompressor),
        (b"\xfd7zXZ", lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ)),
        (b"\x5d\x00", lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE)),
    ]
    for prefix, make in decompressors:
        if data.startswith(prefix):
            decompressor = make()
            try:
                out = decompressor.decompress(data, MAX_DECOMPRESSED_BYTES + 1)
            except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError) as exc:
                raise Unscannable(f"the compressed file is corrupt ({exc})") from None
            if len(out) > MAX_DECOMPRESSED_BYTES:
                raise Unscannable(
                    f"the file decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes"
                )
            if not decompressor.eof:
                raise Unscannable("the compressed stream is truncated")
            if decompressor.unused_data:
                raise Unscannable(
                    f"{len(decompressor.unused_data)} bytes follow the compressed stream"
                )
            return bytes(out)
    return data


# -- the allowlist gate and fickling's second opinion ------------------------------------------


def _allowed(found: Global) -> bool:
    """On the allowlist both as written and as pickle maps Python 2 names (protocols 0-2)."""
    if not is_allowed(found.module, found.name):
        return False
    key = (found.module, found.name)
    if key in _compat_pickle.NAME_MAPPING:
        mapped = _compat_pickle.NAME_MAPPING[key]
    else:
        mapped = (_compat_pickle.IMPORT_MAPPING.get(found.module, found.module), found.name)
    return mapped == key or is_allowed(*mapped)


def _gate(walk: Walk) -> tuple[list[ScanFinding], set[Global]]:
    findings = [ScanFinding(UNSAFE, f"Refused: {problem}.") for problem in walk.problems]
    allowed: set[Global] = set()
    refused: list[str] = []
    for found in walk.globals:
        if _allowed(found):
            allowed.add(found)
        elif found.dotted not in refused:
            refused.append(found.dotted)
    findings += [
        ScanFinding(
            UNSAFE,
            f"Refused: the pickle names `{name}`, which is not on Keel's allowlist of "
            "model-state classes and reviewed reconstructors; loading would import it and may "
            "call it.",
        )
        for name in refused
    ]
    return findings, allowed


def _fickling(stream: bytes, allowed: set[Global]) -> list[ScanFinding]:
    """fickling's findings on one stream, minus those about globals the allowlist accepts."""
    try:
        pickled = Pickled.load(stream, fail_on_decode_error=True)
        results = check_safety(pickled).results
    except Exception as exc:  # fickling raises its own decode errors and ValueError
        return [
            ScanFinding(
                SAFE,
                f"fickling could not analyse one pickle stream ({exc}); Keel's own walk "
                "accounted for every opcode in it.",
            )
        ]
    pairs = {(g.module, g.name) for g in allowed}
    names = {g.name for g in allowed}
    statements = {
        ast.unparse(node)
        for node in pickled.properties.imports
        if isinstance(node, ast.ImportFrom)
        and node.module
        and all((node.module, a.name) in pairs for a in node.names)
    }
    findings: list[ScanFinding] = []
    for result in results:
        if result.severity == Severity.LIKELY_SAFE:
            continue
        trigger = str(result.trigger or "")
        if result.analysis_name in _IMPORT_ANALYSES and trigger in statements:
            continue
        root = _ROOT_NAME.match(trigger.split(": ", 1)[-1])
        called_allowed = root is not None and root.group(1) in names
        if (
            result.analysis_name == "OvertlyBadEval"
            and result.severity == Severity.LIKELY_UNSAFE
            and called_allowed
        ):
            continue  # calling an allowed class or reconstructor
        if result.analysis_name == "UnusedVariables" and called_allowed:
            continue  # e.g. protocol 2's ``encode(...)`` for bytes, NumPy scalars
        findings.append(ScanFinding(result.severity.name, f"fickling: {result}"))
    return findings


def _scan_pickle(data: bytes, *, joblib: bool) -> list[ScanFinding]:
    try:
        streams = pickle_streams(_decompress(data) if joblib else data, joblib=joblib)
    except Unscannable as exc:
        return [ScanFinding(UNSAFE, f"Not loadable: {exc}.")]
    findings: list[ScanFinding] = []
    allowed: set[Global] = set()
    for stream, walk in streams:
        gate, stream_allowed = _gate(walk)
        findings += gate
        findings += _fickling(stream, stream_allowed)
        allowed |= stream_allowed
    names = ", ".join(sorted({g.dotted for g in allowed}))
    if all(f.severity == SAFE for f in findings):
        summary = (
            f"Names only allowed globals (model-state classes and reviewed reconstructors): {names}"
            if allowed
            else "Names no globals at all: plain Python values."
        )
        findings.append(ScanFinding(SAFE, summary))
    elif allowed:
        findings.append(ScanFinding(SAFE, f"The globals on the allowlist it also names: {names}"))
    return findings


# -- formats that load without running code ---------------------------------------------------


def _scan_onnx(data: bytes) -> list[ScanFinding]:
    import onnx

    try:
        model = onnx.ModelProto.FromString(data)
    except Exception as exc:  # protobuf's DecodeError (untyped) and friends
        return [ScanFinding(UNSAFE, f"Not an ONNX model: the bytes do not parse ({exc}).")]
    if not model.graph.node and not model.graph.output:
        return [ScanFinding(UNSAFE, "Not an ONNX model: it parses, but holds no graph.")]
    external = [
        tensor.name
        for tensor in onnx.external_data_helper._get_all_tensors(model)
        if onnx.external_data_helper.uses_external_data(tensor)
    ]
    if external:
        return [
            ScanFinding(
                UNSAFE,
                "The ONNX model reads tensors from external files ("
                + ", ".join(sorted(external)[:5])
                + "); Keel accepts self-contained ONNX files only.",
            )
        ]
    return [
        ScanFinding(
            SAFE,
            f"An ONNX model (IR version {model.ir_version}, {len(model.graph.node)} nodes): "
            "protobuf, loaded by onnxruntime without running Python code.",
        )
    ]


def _scan_skops(data: bytes) -> list[ScanFinding]:
    # The same judgement as the loader's (`keel.services.model_formats`): skops' own trusted
    # types plus Keel's reviewed list, with the schema's size checked before it is read.
    from keel.domain.model_formats import untrusted_message
    from keel.services.model_formats import untrusted_skops_types

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if "schema.json" not in archive.namelist():
                return [ScanFinding(UNSAFE, "Not a skops file: it has no schema.json.")]
        untrusted = untrusted_skops_types(data)
    except Exception as exc:  # zipfile, json and skops raise many kinds: not a skops file
        return [ScanFinding(UNSAFE, f"Not a skops file skops can read ({exc}).")]
    if untrusted:
        return [ScanFinding(UNSAFE, untrusted_message(untrusted))]
    return [
        ScanFinding(
            SAFE,
            "A skops file whose types are all on Keel's trusted list: it loads without "
            "running code.",
        )
    ]


def _not_scanned(data: bytes, flavor: str) -> list[ScanFinding]:
    what = "unknown format"
    if data.startswith(b"PK"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                pickles = [n for n in archive.namelist() if n.endswith((".pkl", ".pickle"))]
        except zipfile.BadZipFile:
            pickles = []
        if pickles:
            what = f"a zip archive holding pickles ({', '.join(pickles[:3])}), PyTorch style"
        else:
            what = "a zip archive of unknown layout"
    return [
        ScanFinding(
            UNSAFE,
            f"Not scanned: {what} (flavor {flavor}). Keel does not call safe what it did not "
            "scan; register a joblib/pickle scikit-learn model, a skops file or an ONNX model.",
        )
    ]


def scan_bytes(data: bytes, sha256: str, flavor: ArtifactFlavor) -> ScanReport:
    """Judge an artifact's bytes as Keel would load them for ``flavor``, without loading them.

    ``safe`` is True only when every finding is ``LIKELY_SAFE``: a pickle that names only
    allowed globals and that fickling does not object to, a self-contained ONNX model, or a
    skops file of trusted types. Everything else, including what Keel did not scan, is unsafe.
    """
    kind = str(flavor)
    if kind in _PICKLE_FLAVORS:
        findings = _scan_pickle(data, joblib=kind != "pickle")
    elif kind == "onnx":
        findings = _scan_onnx(data)
    elif kind == "skops":
        findings = _scan_skops(data)
    else:
        findings = _not_scanned(data, kind)
    return ScanReport(
        sha256=sha256,
        scanner=SCANNER,
        scanner_version=SCANNER_VERSION,
        safe=bool(findings) and all(f.severity == SAFE for f in findings),
        findings=tuple(findings),
        scanned_at=datetime.now(UTC),
    )


def current_report(report: ScanReport | None) -> ScanReport | None:
    """``report`` if it was made by these rules; a report by older rules counts as unsafe
    (older rules let through artifacts these refuse) until the artifact is scanned again."""
    if report is None or (report.scanner, report.scanner_version) == (SCANNER, SCANNER_VERSION):
        return report
    return replace(
        report,
        safe=False,
        findings=(
            *report.findings,
            ScanFinding(
                UNSAFE,
                f"Scanned by older rules ({report.scanner} {report.scanner_version}); "
                f"{SCANNER} {SCANNER_VERSION} has not judged it yet. Register the same "
                "artifact again to have it scanned.",
            ),
        ),
    )


class ArtifactScanner:
    """Scans each stored artifact once per scanner version, by SHA-256, and records the report
    (audited)."""

    def __init__(self, store: SqlEvaluationStore, artifacts: ArtifactStore) -> None:
        self.store = store
        self.artifacts = artifacts

    def scan(self, artifact: Artifact, actor: str) -> ScanReport:
        """The artifact's scan report, scanning its verified stored bytes if not done yet."""
        existing = self.store.get_scan(artifact.sha256)
        if existing is not None and (existing.scanner, existing.scanner_version) == (
            SCANNER,
            SCANNER_VERSION,
        ):
            return existing
        # Not scanned yet, or by older rules (which may have let through what these refuse).
        data = b"".join(self.artifacts.iter_verified(artifact.sha256))
        return self.store.save_scan(scan_bytes(data, artifact.sha256, artifact.flavor), actor)

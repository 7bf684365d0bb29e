"""Crafted malicious artifacts: every one scans unsafe (or "not scanned"), none is ever loaded.

Payloads are raw opcodes (`pickle_payloads`) or objects whose ``__reduce__`` names a dangerous
callable and that are only ever *dumped*. The corpus covers every technique issue 10 names
(the allowlist re-exports, ``Path.write_text`` + ``imp.load_source``, the joblib ``elsize``
trick, a torch-style zip) plus the classic ones.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import subprocess
import zipfile
from dataclasses import dataclass
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from tests.security.pickle_payloads import (
    Raw,
    call,
    calls,
    global_,
    pickle_of,
    stack_global,
    text,
    value,
)

from keel.domain.registry import ArtifactFlavor
from keel.services.scanning import scan_bytes

PICKLE, JOBLIB, OTHER = ArtifactFlavor.PICKLE, ArtifactFlavor.JOBLIB, ArtifactFlavor.OTHER


@dataclass
class Reduces:
    """Pickles as ``made_by(*args)``; dumped only."""

    made_by: Any
    args: tuple[Any, ...]

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.made_by, self.args)


def _joblib(obj: object, compress: int | tuple[str, int] = 0) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(obj, buffer, compress=compress)
    return buffer.getvalue()


def _model_with(trap: object) -> bytes:
    model = DummyClassifier().fit([[0.0], [1.0]], [0, 1])
    model.trap = trap
    return pickle.dumps(model)


def _dtype(descr: str, elsize: int, flags: int = 0) -> Raw:
    """``numpy.dtype(descr, False, True)`` with the state NumPy pickles, ``elsize`` forged."""
    state = (3, "<", None, None, None, elsize, 1, flags)
    return Raw(call(global_("numpy", "dtype"), descr, False, True).ops + value(state) + b"b")


def _wrapped_array(
    dtype: Raw, shape: tuple[int, ...], raw: bytes, *, ctor: bytes = b")\x81"
) -> Raw:
    """A joblib ``NumpyArrayWrapper`` for ``shape``/``dtype`` followed by ``raw`` array bytes."""
    state = (
        b"}("  # EMPTY_DICT, MARK
        + text("subclass")
        + global_("numpy", "ndarray").ops
        + text("shape")
        + value(shape)
        + text("order")
        + text("C")
        + text("dtype")
        + dtype.ops
        + text("allow_mmap")
        + b"\x89"
        + text("numpy_array_alignment_bytes")
        + b"N"
        + b"u"  # SETITEMS
    )
    wrapper = global_("joblib.numpy_pickle", "NumpyArrayWrapper").ops + ctor
    return Raw(wrapper + state + b"b" + raw)


OS_SYSTEM = calls("os", "system", "id")


def _elsize_trick() -> bytes:
    # The dtype claims 64-byte items, so a splitter that trusts elsize skips 4 * 64 bytes: the
    # os.system call hides inside them. NumPy ignores elsize for float64: joblib reads 4 * 8.
    hidden = OS_SYSTEM.ops + b"0"  # call, then POP
    padding = b"N0" * ((4 * 64 - 32 - len(hidden)) // 2)
    arrays = _wrapped_array(_dtype("f8", 64), (4,), b"\0" * 32 + hidden + padding)
    return b"\x80\x04" + arrays.ops + b"."


def _elsize_trick_short() -> bytes:
    # The reverse: elsize claims 1-byte items; joblib reads 8 bytes per item.
    arrays = _wrapped_array(_dtype("f8", 1), (4,), b"\0" * 32)
    return b"\x80\x04" + arrays.ops + OS_SYSTEM.ops + b"0N."


def _frame_overrun() -> bytes:
    # A FRAME that runs past the wrapper's BUILD: pickle's pure-Python unpickler (joblib's) buffers
    # the whole frame, so joblib reads the array bytes from *after* the frame.
    body = _wrapped_array(_dtype("f8", 8), (1,), b"").ops
    framed = body + b"\0" * 8 + OS_SYSTEM.ops + b"0N."
    return b"\x80\x04\x95" + len(framed).to_bytes(8, "little") + framed


def _after_compressed_stream() -> bytes:
    benign = _joblib(DummyClassifier(), ("gzip", 3))
    return benign + gzip.compress(pickle.dumps(Reduces(os.system, ("id",))))


def _torch_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(Reduces(os.system, ("id",))))
        archive.writestr("archive/version", "3\n")
    return buffer.getvalue()


def _write_then_load() -> bytes:
    # The pair fickling missed: write Python source with Path.write_text, then imp.load_source.
    path = call(global_("pathlib", "PosixPath"), "/tmp/keel_payload.py")
    write = call(stack_global("pathlib", "Path.write_text"), path, "import os; os.system('id')")
    load = calls("imp", "load_source", "keel_payload", "/tmp/keel_payload.py")
    return pickle_of(write, load)


def _names_built_on_the_stack() -> bytes:
    # STACK_GLOBAL whose module name is computed by a call (str.join), not a literal.
    module = call(global_("builtins", "str"), "os")
    name = call(global_("builtins", "str"), "system")
    return pickle_of(call(Raw(module.ops + name.ops + b"\x93"), "id"))


def _names_from_memo() -> bytes:
    # STACK_GLOBAL whose strings come back from the memo: still literal, still refused.
    ops = text("posix") + b"\x94" + text("system") + b"\x94" + b"h\x00h\x01\x93"
    return pickle_of(call(Raw(ops), "id"))


def _getattr_chain() -> bytes:
    os_module = calls("builtins", "__import__", "os")
    system = call(global_("builtins", "getattr"), os_module, "system")
    return pickle_of(call(system, "id"))


def _marshal_function() -> bytes:
    code = calls("marshal", "loads", b"\xe3fake-code-object")
    function = calls("types", "FunctionType", code, Raw(b"}"))
    return pickle_of(call(function))


def _nested_pickle() -> bytes:
    inner = pickle.dumps(Reduces(os.system, ("id",)))
    return pickle_of(calls("pickle", "loads", inner))


def _reconstructor_with_bad_base() -> bytes:
    return pickle_of(
        calls(
            "copyreg",
            "_reconstructor",
            global_("os", "_wrap_close"),
            global_("posix", "system"),
            "id",
        )
    )


def _non_global_callable() -> bytes:
    # REDUCE on the result of a call (functools.partial of an allowed class): never written by
    # pickle for a model, refused.
    partial = call(global_("functools", "partial"), global_("numpy", "ndarray"))
    return pickle_of(call(partial, (1,)))


def _wrapper_via_reconstructor() -> bytes:
    # joblib's wrapper made by copyreg rather than NEWOBJ: joblib still reads array bytes.
    made = calls(
        "copyreg",
        "_reconstructor",
        global_("joblib.numpy_pickle", "NumpyArrayWrapper"),
        global_("builtins", "object"),
        None,
    )
    return b"\x80\x04" + made.ops + b"}b" + OS_SYSTEM.ops + b"0N."


def _dtype_not_copied() -> bytes:
    # numpy.dtype(..., copy=False) would have the scanner mutate NumPy's shared float64.
    dtype = Raw(
        call(global_("numpy", "dtype"), "f8", False, False).ops
        + value((3, "<", None, None, None, -1, -1, 0))
        + b"b"
    )
    return b"\x80\x04" + _wrapped_array(dtype, (1,), b"\0" * 8).ops + b"."


CASES: dict[str, tuple[bytes, ArtifactFlavor]] = {
    # -- the classics -------------------------------------------------------------------------
    "os.system": (pickle.dumps(Reduces(os.system, ("id",))), PICKLE),
    "posix.system": (pickle_of(calls("posix", "system", "id")), PICKLE),
    "nt.system": (pickle_of(calls("nt", "system", "id")), PICKLE),
    "os.popen": (pickle_of(calls("os", "popen", "id")), PICKLE),
    "subprocess.Popen": (pickle.dumps(Reduces(subprocess.Popen, (["id"],))), PICKLE),
    "subprocess.check_output": (pickle.dumps(Reduces(subprocess.check_output, (["id"],))), PICKLE),
    "builtins.eval": (pickle.dumps(Reduces(eval, ("1",))), PICKLE),
    "builtins.exec": (pickle.dumps(Reduces(exec, ("pass",))), PICKLE),
    "builtins.__import__": (pickle.dumps(Reduces(__import__, ("os",))), PICKLE),
    "builtins.getattr chain": (_getattr_chain(), PICKLE),
    "builtins.open": (pickle_of(calls("builtins", "open", "/etc/passwd")), PICKLE),
    "__builtin__.eval (Python 2 name)": (
        pickle_of(calls("__builtin__", "eval", "1"), protocol=2),
        PICKLE,
    ),
    "io.open": (pickle_of(calls("io", "open", "/etc/passwd")), PICKLE),
    "runpy.run_path": (pickle_of(calls("runpy", "run_path", "/tmp/x.py")), PICKLE),
    "importlib.import_module": (pickle_of(calls("importlib", "import_module", "os")), PICKLE),
    "code.InteractiveInterpreter": (pickle_of(calls("code", "InteractiveInterpreter")), PICKLE),
    "pickle.loads nested": (_nested_pickle(), PICKLE),
    "marshal + types.FunctionType": (_marshal_function(), PICKLE),
    "types.CodeType": (pickle_of(calls("types", "CodeType", 0)), PICKLE),
    "ctypes.CDLL": (pickle_of(calls("ctypes", "CDLL", "libc.so.6")), PICKLE),
    "shutil.rmtree": (pickle_of(calls("shutil", "rmtree", "/")), PICKLE),
    "socket.create_connection": (
        pickle_of(calls("socket", "create_connection", ("10.0.0.1", 80))),
        PICKLE,
    ),
    "http.client.HTTPConnection": (pickle_of(calls("http.client", "HTTPConnection", "x")), PICKLE),
    "urllib.request.urlopen": (pickle_of(calls("urllib.request", "urlopen", "http://x")), PICKLE),
    "webbrowser.open": (pickle_of(calls("webbrowser", "open", "http://x")), PICKLE),
    "pty.spawn": (pickle_of(calls("pty", "spawn", "/bin/sh")), PICKLE),
    "tempfile.mkstemp": (pickle_of(calls("tempfile", "mkstemp")), PICKLE),
    "operator.attrgetter": (pickle_of(calls("operator", "attrgetter", "system")), PICKLE),
    "operator.methodcaller": (pickle_of(calls("operator", "methodcaller", "system", "id")), PICKLE),
    "sys.modules": (pickle_of(stack_global("sys", "modules")), PICKLE),
    "joblib.load": (pickle_of(calls("joblib", "load", "/tmp/x")), PICKLE),
    "torch.load": (pickle_of(calls("torch", "load", "/tmp/x")), PICKLE),
    # -- the issue's bypasses: functions re-exported inside allowed packages ------------------
    "sklearn.utils._testing.check_output": (
        pickle_of(calls("sklearn.utils._testing", "check_output", ("id",))),
        JOBLIB,
    ),
    "sklearn.utils._testing.assert_run_python_script_without_output": (
        pickle_of(
            calls("sklearn.utils._testing", "assert_run_python_script_without_output", "import os")
        ),
        JOBLIB,
    ),
    "numpy.lib._datasource._open": (
        pickle_of(calls("numpy.lib._datasource", "_open", "/etc/passwd")),
        JOBLIB,
    ),
    "scipy._lib._tmpdirs.rmtree": (pickle_of(calls("scipy._lib._tmpdirs", "rmtree", "/")), JOBLIB),
    "sklearn.utils.discovery.import_module": (
        pickle_of(calls("sklearn.utils.discovery", "import_module", "os")),
        JOBLIB,
    ),
    "scipy._lib.deprecation.import_module": (
        pickle_of(calls("scipy._lib.deprecation", "import_module", "os")),
        JOBLIB,
    ),
    "numpy.testing runstring": (
        pickle_of(calls("numpy.testing._private.utils", "runstring", "1", None)),
        JOBLIB,
    ),
    "numpy.load": (pickle_of(calls("numpy", "load", "/tmp/x.npy", None, True)), JOBLIB),
    "numpy.memmap (a class that maps files)": (
        pickle_of(calls("numpy", "memmap", "/tmp/x", "uint8", "w+")),
        JOBLIB,
    ),
    "dotted name into numpy": (
        pickle_of(call(stack_global("numpy", "lib._datasource._open"), "/etc/passwd")),
        JOBLIB,
    ),
    "FunctionTransformer(func=os.system) in a pipeline": (
        pickle.dumps(make_pipeline(FunctionTransformer(func=os.system), DummyClassifier())),
        ArtifactFlavor.SKLEARN,
    ),
    "functools.partial(os.system)": (
        pickle_of(call(global_("functools", "partial"), global_("os", "system"), "id")),
        PICKLE,
    ),
    "copyreg._reconstructor with a bad base": (_reconstructor_with_bad_base(), PICKLE),
    "_codecs.encode with another codec": (
        pickle_of(calls("_codecs", "encode", "x", "rot13"), protocol=2),
        PICKLE,
    ),
    # -- the fickling gap --------------------------------------------------------------------
    "Path.write_text + imp.load_source": (_write_then_load(), PICKLE),
    "importlib.machinery.SourceFileLoader": (
        pickle_of(calls("importlib.machinery", "SourceFileLoader", "x", "/tmp/x.py")),
        PICKLE,
    ),
    # -- hiding places ---------------------------------------------------------------------------
    "joblib elsize trick (skip too much)": (_elsize_trick(), JOBLIB),
    "joblib elsize trick (skip too little)": (_elsize_trick_short(), JOBLIB),
    "joblib frame overrun": (_frame_overrun(), JOBLIB),
    "joblib wrapper made by copyreg": (_wrapper_via_reconstructor(), JOBLIB),
    "joblib dtype not copied": (_dtype_not_copied(), JOBLIB),
    "after a numpy array in joblib": (
        _joblib([np.arange(1000.0), Reduces(os.system, ("id",))]),
        JOBLIB,
    ),
    "nested object-array pickle": (
        _joblib([np.array([Reduces(os.system, ("id",)), 1], dtype=object)]),
        JOBLIB,
    ),
    "inside a compressed joblib": (_joblib({"m": Reduces(os.system, ("id",))}, 3), JOBLIB),
    "after a compressed joblib stream": (_after_compressed_stream(), JOBLIB),
    "as a model attribute": (_model_with(Reduces(os.system, ("id",))), ArtifactFlavor.SKLEARN),
    "STACK_GLOBAL with names built on the stack": (_names_built_on_the_stack(), PICKLE),
    "STACK_GLOBAL with names from the memo": (_names_from_memo(), PICKLE),
    "REDUCE of a non-global callable": (_non_global_callable(), PICKLE),
    "INST opcode (protocol 0)": (b"(S'id'\nios\nsystem\n.", PICKLE),
    "OBJ opcode (protocol 1)": (b"(cos\nsystem\nX\x02\x00\x00\x00ido.", PICKLE),
    "extension registry (EXT1)": (b"\x80\x02\x82\x01)R.", PICKLE),
    "persistent id": (b"\x80\x02X\x02\x00\x00\x00id\x94Q.", PICKLE),
    # -- broken or unscanned ------------------------------------------------------------------
    "truncated stream": (pickle.dumps(DummyClassifier())[:-20], PICKLE),
    "corrupt stream": (b"\x80\x04\xff\xfe garbage", PICKLE),
    "trailing payload after STOP": (
        pickle.dumps(1) + pickle.dumps(Reduces(os.system, ("id",))),
        PICKLE,
    ),
    "torch-style zip with data.pkl": (_torch_zip(), OTHER),
    "torch-style zip registered as a pickle": (_torch_zip(), PICKLE),
    "a pickle calling itself ONNX": (
        pickle.dumps(Reduces(os.system, ("id",))),
        ArtifactFlavor.ONNX,
    ),
    "unknown bytes": (b"\x00\x01\x02 not a model", OTHER),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_crafted_artifact_scans_unsafe(name: str) -> None:
    data, flavor = CASES[name]
    report = scan_bytes(data, "sha", flavor)
    assert not report.safe, report.findings
    assert any(f.severity != "LIKELY_SAFE" for f in report.findings)


def test_the_corpus_covers_the_issue() -> None:
    assert len(CASES) >= 40
    names = " ".join(CASES)
    for technique in (
        "check_output",
        "assert_run_python_script_without_output",
        "_datasource._open",
        "_tmpdirs.rmtree",
        "discovery.import_module",
        "deprecation.import_module",
        "Path.write_text + imp.load_source",
        "elsize",
        "torch-style zip",
    ):
        assert technique in names


def test_refusals_name_the_global() -> None:
    report = scan_bytes(CASES["sklearn.utils._testing.check_output"][0], "sha", JOBLIB)
    assert any("sklearn.utils._testing.check_output" in f.message for f in report.findings)
    report = scan_bytes(_write_then_load(), "sha", PICKLE)
    messages = " ".join(f.message for f in report.findings)
    assert "pathlib.Path.write_text" in messages and "imp.load_source" in messages


def test_the_elsize_trick_is_seen_through() -> None:
    """Not merely refused: the scanner reads the array as joblib does and finds os.system."""
    report = scan_bytes(_elsize_trick(), "sha", JOBLIB)
    assert any("os.system" in f.message for f in report.findings), report.findings
    # the honest version of the same file (elsize 8) splits the same way
    honest = _wrapped_array(_dtype("f8", 8), (4,), b"\0" * 32 + OS_SYSTEM.ops + b"0")
    report = scan_bytes(b"\x80\x04" + honest.ops + b"N.", "sha", JOBLIB)
    assert any("os.system" in f.message for f in report.findings), report.findings


def test_a_wrapped_float_array_without_a_payload_is_safe() -> None:
    """The crafted-wrapper helper itself writes what joblib accepts: not everything is refused."""
    data = b"\x80\x04" + _wrapped_array(_dtype("f8", -1), (4,), b"\0" * 32).ops + b"."
    assert joblib.load(io.BytesIO(data)).tolist() == [0.0] * 4
    assert scan_bytes(data, "sha", JOBLIB).safe

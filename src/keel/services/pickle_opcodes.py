"""Walk a pickle or joblib file's opcodes without executing them: every global it names, every
call it makes, and where each pickle stream in the file starts and ends.

`pickletools.genops` decodes opcodes and never executes them. `_Stack` follows the values just far
enough to answer three questions exactly as the loader would:

- **Which globals, called how.** Every ``GLOBAL``/``STACK_GLOBAL``/``INST`` is recorded with its
  module and name; a ``STACK_GLOBAL`` whose strings are not literals, an extension-registry
  (``EXT*``) or persistent-id (``PERSID``) reference, and a call whose callable is not a global
  are *problems*: they make the artifact unsafe.
- **Where joblib's raw array bytes are.** ``joblib.dump`` writes each NumPy array's bytes right
  after the ``BUILD`` of a ``NumpyArrayWrapper``, and ``joblib.load`` reads them there. The walker
  skips exactly the bytes joblib reads: the dtype is rebuilt with NumPy itself from the literal
  values in the stream (so its ``itemsize`` is NumPy's, whatever an ``elsize`` field claims),
  object arrays are a nested pickle walked like the outer one, and anything joblib could read
  differently from the walker (a wrapper not made the way joblib makes it, a dtype or shape that is
  not a literal, a wrapper used as a value) makes the file unscannable.
- **Plain pickles** (flavor ``pickle``, loaded with `pickle.load`) are walked with plain pickle
  semantics: a ``BUILD`` reads no array bytes there.
"""

from __future__ import annotations

import io
import math
import pickletools
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keel.services.pickle_allowlist import CODECS_ENCODE, JOBLIB_WRAPPER


class Unscannable(Exception):
    """The bytes are not a pickle Keel can account for: truncated, corrupt or unsupported."""


@dataclass(frozen=True)
class Global:
    module: str
    name: str

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(eq=False)
class _Obj:
    made_by: Global | None
    opcode: str
    args: Any
    state: Any = None
    dtype: np.dtype[Any] | None = None  # the real dtype, for objects made by ``numpy.dtype``


@dataclass
class Walk:
    """What one pickle stream names and does."""

    globals: list[Global] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class _Unknown:
    def __repr__(self) -> str:
        return "<unknown>"


_UNKNOWN = _Unknown()
_MARK = object()
_NUMPY_DTYPE = Global("numpy", "dtype")
_WRAPPER = Global(*JOBLIB_WRAPPER)
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
    }
)
_CALLS = frozenset({"REDUCE", "NEWOBJ", "NEWOBJ_EX", "INST", "OBJ"})
# Every opcode `_Stack.step` handles; a test checks this covers `pickletools.opcodes`.
HANDLED_OPCODES = (
    _CONSTANTS
    | _CALLS
    | {
        "NONE",
        "NEWTRUE",
        "NEWFALSE",
        "MARK",
        "EMPTY_TUPLE",
        "TUPLE1",
        "TUPLE2",
        "TUPLE3",
        "TUPLE",
        "EMPTY_LIST",
        "LIST",
        "APPEND",
        "APPENDS",
        "EMPTY_DICT",
        "DICT",
        "SETITEM",
        "SETITEMS",
        "EMPTY_SET",
        "ADDITEMS",
        "FROZENSET",
        "BYTEARRAY8",
        "READONLY_BUFFER",
        "NEXT_BUFFER",
        "GLOBAL",
        "STACK_GLOBAL",
        "EXT1",
        "EXT2",
        "EXT4",
        "PERSID",
        "BINPERSID",
        "BUILD",
        "MEMOIZE",
        "PUT",
        "BINPUT",
        "LONG_BINPUT",
        "GET",
        "BINGET",
        "LONG_BINGET",
        "POP",
        "POP_MARK",
        "DUP",
        "PROTO",
        "FRAME",
        "STOP",
    }
)


def _plain(value: Any, depth: int = 0) -> Any:
    """A literal value with each ``numpy.dtype`` replaced by the real dtype, for NumPy to read."""
    if depth > 32:
        raise Unscannable("a dtype nested too deeply")
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, tuple):
        return tuple(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return {_plain(k, depth + 1): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, _Obj) and value.dtype is not None:
        return value.dtype
    raise Unscannable("a dtype whose state is not made of literal values")


def _make_dtype(obj: _Obj) -> None:
    """Rebuild a pickled ``numpy.dtype`` with NumPy itself, as unpickling would (or forget it).

    Only the arguments NumPy's own ``dtype.__reduce__`` writes are accepted: a string, align
    0 and copy 1, so the scanner never touches NumPy's shared builtin dtypes.
    """
    obj.dtype = None
    args = obj.args
    if not (
        isinstance(args, tuple)
        and len(args) == 3
        and isinstance(args[0], str)
        and args[1] in (0, False)
        and args[2] in (1, True)
    ):
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dtype = np.dtype(args[0], align=False, copy=True)
            if obj.state is not None:
                dtype.__setstate__(_plain(obj.state))  # type: ignore[attr-defined]
    except Unscannable:
        return
    except Exception:  # NumPy refuses the state: so would unpickling
        return
    obj.dtype = dtype


class _Stack:
    """Values as far as the scan needs them; everything else is ``_UNKNOWN``."""

    def __init__(self, walk: Walk, *, joblib: bool) -> None:
        self.items: list[Any] = []
        self.memo: dict[Any, Any] = {}
        self.walk = walk
        self.joblib = joblib

    def pop(self, *, callable_: bool = False) -> Any:
        if not self.items:
            raise Unscannable("the pickle pops from an empty stack (a malformed opcode sequence)")
        item = self.items.pop()
        if self.joblib and item == _WRAPPER and not callable_:
            raise Unscannable(
                "joblib's array wrapper class is used as a value, which joblib never writes"
            )
        return item

    def pop_to_mark(self) -> list[Any]:
        popped: list[Any] = []
        while True:
            if not self.items:
                raise Unscannable("the pickle has no MARK where it needs one (malformed)")
            if self.items[-1] is _MARK:
                self.items.pop()
                return popped[::-1]
            popped.append(self.pop())

    def top(self) -> Any:
        if not self.items:
            raise Unscannable("the pickle reads an empty stack (a malformed opcode sequence)")
        return self.items[-1]

    def _global(self, module: Any, name: Any) -> Any:
        if not (isinstance(module, str) and isinstance(name, str)):
            self.walk.problems.append(
                "STACK_GLOBAL names a module or attribute built on the stack, which Keel cannot "
                "read without running the pickle"
            )
            return _UNKNOWN
        found = Global(module, name)
        self.walk.globals.append(found)
        return found

    def _call(self, opcode: str, made_by: Any, args: Any) -> _Obj:
        if not isinstance(made_by, Global):
            self.walk.problems.append(
                f"{opcode} calls something that is not a named global (the result of another "
                "call or an unreadable value)"
            )
            return _Obj(None, opcode, args)
        if (made_by.module, made_by.name) == CODECS_ENCODE and not (
            isinstance(args, tuple)
            and len(args) == 2
            and isinstance(args[0], str)
            and args[1] in ("latin1", "latin-1")
        ):
            self.walk.problems.append(
                "_codecs.encode is called with arguments other than (text, 'latin1'), which is "
                "all protocol 2 needs to write bytes"
            )
        obj = _Obj(made_by, opcode, args)
        if made_by == _NUMPY_DTYPE and self.joblib:  # only joblib needs its size
            _make_dtype(obj)
        return obj

    def step(self, name: str, arg: Any) -> None:
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
            push(tuple(reversed([self.pop() for _ in range(int(name[-1]))])))
        elif name == "TUPLE":
            push(tuple(self.pop_to_mark()))
        elif name == "EMPTY_LIST":
            push([])
        elif name == "LIST":
            push(self.pop_to_mark())
        elif name == "APPEND":
            self.pop()
            self.top()
        elif name in ("APPENDS", "ADDITEMS"):
            self.pop_to_mark()
            self.top()
        elif name == "EMPTY_DICT":
            push({})
        elif name == "DICT":
            push(self._dict(self.pop_to_mark()))
        elif name == "SETITEM":
            value, key = self.pop(), self.pop()
            self._setitems([key, value])
        elif name == "SETITEMS":
            self._setitems(self.pop_to_mark())
        elif name == "EMPTY_SET":
            push(_UNKNOWN)
        elif name == "FROZENSET":
            self.pop_to_mark()
            push(_UNKNOWN)
        elif name == "BYTEARRAY8":
            push(bytearray(arg))
        elif name == "READONLY_BUFFER":
            self.pop()
            push(_UNKNOWN)
        elif name == "GLOBAL" or name == "INST":
            module, _, attr = str(arg).partition(" ")
            found = self._global(module, attr)
            if name == "INST":
                push(self._call(name, found, tuple(self.pop_to_mark())))
            else:
                push(found)
        elif name == "STACK_GLOBAL":
            attr, module = self.pop(), self.pop()
            push(self._global(module, attr))
        elif name in ("REDUCE", "NEWOBJ"):
            args, made_by = self.pop(), self.pop(callable_=True)
            push(self._call(name, made_by, args))
        elif name == "NEWOBJ_EX":
            _kwargs, args, made_by = self.pop(), self.pop(), self.pop(callable_=True)
            push(self._call(name, made_by, args))
        elif name == "OBJ":
            if not self.items:
                raise Unscannable("OBJ without a MARK (a malformed opcode sequence)")
            args = self.pop_to_mark_keeping_callable()
            push(self._call(name, args[0] if args else _UNKNOWN, tuple(args[1:])))
        elif name in ("EXT1", "EXT2", "EXT4", "PERSID", "BINPERSID", "NEXT_BUFFER"):
            if name == "BINPERSID":
                self.pop()
            self.walk.problems.append(
                f"{name} loads an object from outside the pickle (the copyreg extension "
                "registry, a persistent id or an out-of-band buffer)"
            )
            push(_UNKNOWN)
        elif name == "BUILD":
            self._build(self.pop())
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = self.top()
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            self.memo[arg] = self.top()
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            if arg not in self.memo:
                raise Unscannable(f"the pickle reads memo entry {arg!r} that it never wrote")
            push(self.memo[arg])
        elif name == "POP":
            self.pop()
        elif name == "POP_MARK":
            self.pop_to_mark()
        elif name == "DUP":
            push(self.top())
        elif name in ("PROTO", "FRAME", "STOP"):
            pass
        else:
            raise Unscannable(f"the pickle uses opcode {name}, which Keel does not walk")

    def pop_to_mark_keeping_callable(self) -> list[Any]:
        """OBJ's items: the first (the callable) may be joblib's wrapper class."""
        popped: list[Any] = []
        while True:
            if not self.items:
                raise Unscannable("the pickle has no MARK where it needs one (malformed)")
            if self.items[-1] is _MARK:
                self.items.pop()
                break
            popped.append(self.items.pop())
        items = popped[::-1]
        if self.joblib and any(item == _WRAPPER for item in items[1:]):
            raise Unscannable("joblib's array wrapper class is used as a value")
        return items

    def _build(self, state: Any) -> None:
        target = self.top()
        if not isinstance(target, _Obj):
            return
        if target.made_by == _WRAPPER and isinstance(target.state, dict):
            if not isinstance(state, dict):
                raise Unscannable("a joblib array wrapper whose state is not a plain dict")
            target.state = {**target.state, **state}
        else:
            target.state = state
        if target.made_by == _NUMPY_DTYPE and self.joblib:
            _make_dtype(target)

    @staticmethod
    def _dict(items: list[Any]) -> Any:
        try:
            return dict(zip(items[::2], items[1::2], strict=True))
        except (TypeError, ValueError):
            return _UNKNOWN

    def _setitems(self, items: list[Any]) -> None:
        target = self.top()
        if isinstance(target, dict):
            try:
                target.update(zip(items[::2], items[1::2], strict=True))
            except (TypeError, ValueError):
                self.items[-1] = _UNKNOWN


def _array_bytes_end(
    data: bytes, pos: int, wrapper: _Obj, streams: list[tuple[bytes, Walk]]
) -> int:
    """Where the bytes joblib reads for the wrapped array that starts at ``pos`` end.

    Mirrors ``NumpyArrayWrapper.read_array``: object dtypes (``dtype.hasobject``) are a nested
    pickle; other arrays are an optional alignment (one length byte, then that many bytes)
    followed by ``prod(shape) * dtype.itemsize`` bytes, with the itemsize of the real dtype.
    """
    if wrapper.opcode not in ("NEWOBJ", "NEWOBJ_EX") or wrapper.args != ():
        raise Unscannable("a joblib array wrapper not made the way joblib makes it")
    state = wrapper.state
    if not isinstance(state, dict):
        raise Unscannable("a joblib array wrapper without a readable state")
    shape, dtype_obj = state.get("shape"), state.get("dtype")
    if not (
        isinstance(shape, tuple)
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
    ):
        raise Unscannable("a joblib array wrapper whose shape is not a tuple of sizes")
    if not (isinstance(dtype_obj, _Obj) and dtype_obj.dtype is not None):
        raise Unscannable("a joblib array wrapper whose dtype Keel cannot rebuild exactly")
    dtype = dtype_obj.dtype
    if dtype.hasobject:
        # joblib reads a nested pickle with a plain Unpickler: walk it with plain semantics.
        return _split(data, pos, streams, joblib=False)
    if dtype.itemsize <= 0:
        raise Unscannable("a joblib array with an item size of 0")
    alignment = state.get("numpy_array_alignment_bytes")
    if not (alignment is None or (isinstance(alignment, int) and not isinstance(alignment, bool))):
        raise Unscannable("a joblib array wrapper whose alignment is not a literal")
    end = pos
    if alignment is not None:
        if pos >= len(data):
            raise Unscannable("the file ends inside a joblib array (truncated)")
        end += 1 + data[pos]
    end += math.prod(shape) * dtype.itemsize
    if end > len(data):
        raise Unscannable("the file ends inside a joblib array's data (truncated)")
    return end


def _is_wrapper(stack: _Stack) -> bool:
    top = stack.items[-1] if stack.items else None
    return isinstance(top, _Obj) and top.made_by == _WRAPPER


def _split(data: bytes, start: int, streams: list[tuple[bytes, Walk]], *, joblib: bool) -> int:
    """Walk the pickle starting at ``start``; append (its opcode bytes, its walk) to ``streams``
    (nested streams after it) and return where it ends (after STOP)."""
    stream = io.BytesIO(data)
    stream.seek(start)
    walk = Walk()
    stack = _Stack(walk, joblib=joblib)
    opcodes = bytearray()
    index = len(streams)
    streams.append((b"", walk))
    nested: list[tuple[bytes, Walk]] = []
    frame_end = 0
    while True:
        segment = stream.tell()
        resume: int | None = None
        try:
            for op, arg, _pos in pickletools.genops(stream):
                stack.step(op.name, arg)
                here = stream.tell()
                if op.name == "FRAME":
                    if here < frame_end:
                        raise Unscannable("a FRAME starts inside the previous frame")
                    frame_end = here + (arg if isinstance(arg, int) else 0)
                if (
                    op.name in ("STOP", "BUILD")
                    and here < frame_end
                    and (op.name == "STOP" or (joblib and _is_wrapper(stack)))
                ):
                    # The pure-Python unpickler joblib uses buffers a whole frame: bytes that
                    # joblib reads from the file here would come from after the frame.
                    raise Unscannable(
                        f"a pickle frame runs past a {op.name} where joblib reads the file directly"
                    )
                if op.name == "STOP":
                    opcodes += data[segment : stream.tell()]
                    streams[index] = (bytes(opcodes), walk)
                    streams.extend(nested)
                    return stream.tell()
                if joblib and op.name == "BUILD" and _is_wrapper(stack):
                    opcodes += data[segment : stream.tell()]
                    resume = _array_bytes_end(data, stream.tell(), stack.items[-1], nested)
                    stack.items[-1] = _UNKNOWN  # joblib replaces the wrapper by the array
                    break
        except (ValueError, UnicodeDecodeError) as exc:
            raise Unscannable(f"the pickle stream is truncated or corrupt ({exc})") from None
        if resume is None:
            raise Unscannable("the pickle stream ends without a STOP opcode (truncated)")
        stream.seek(resume)


def pickle_streams(data: bytes, *, joblib: bool = True) -> list[tuple[bytes, Walk]]:
    """The pickle streams in a pickle or joblib file (joblib's raw array bytes left out), each
    with what it names and does.

    Raises `Unscannable` for bytes that are truncated, corrupt, or followed by trailing data.

    >>> import pickle
    >>> [(s, w.globals) for s, w in pickle_streams(pickle.dumps([1, 2]))]
    [(b'\\x80\\x04\\x95\\t\\x00\\x00\\x00\\x00\\x00\\x00\\x00]\\x94(K\\x01K\\x02e.', [])]
    """
    streams: list[tuple[bytes, Walk]] = []
    end = _split(data, 0, streams, joblib=joblib)
    if end != len(data):
        raise Unscannable(
            f"{len(data) - end} bytes follow the end of the pickle stream; a model file holds "
            "one pickle"
        )
    return streams

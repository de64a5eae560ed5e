"""JSON through CPython's C accelerator without importing the `json` package.

`import json` pulls in `re` and `enum`, which costs a container runtime several
milliseconds on every start; `_json` alone gives the same parser and encoder.
Falls back to the `json` package where `_json` is absent (some cross builds).
"""

try:
    import _json
except ImportError:  # pragma: no cover - interpreters built without the accelerator
    _json = None


class JSONError(ValueError):
    """Malformed JSON; the message names the position like `json` does."""


class _ScanContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo = None

    @staticmethod
    def parse_constant(name):
        raise JSONError(f"invalid constant {name}")


def _unencodable(value):
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


if _json is not None:
    _scan_once = _json.make_scanner(_ScanContext())
    _quote = _json.encode_basestring_ascii
    # The C encoder, for compact output (it has no indentation): state files and
    # messages, written several times per container start, 3x cheaper than _encode.
    _compact_encoder = _json.make_encoder(None, _unencodable, _quote, None, ":", ",", False, False, False)
else:  # pragma: no cover
    import json as _stdjson

    _quote = _stdjson.encoder.encode_basestring_ascii


def _line_col(text, pos):
    line = text.count("\n", 0, pos) + 1
    return line, pos - text.rfind("\n", 0, pos)


def loads(text):
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")
    if _json is None:  # pragma: no cover
        try:
            return _stdjson.loads(text)
        except ValueError as exc:
            raise JSONError(str(exc)) from None
    pos = _skip_ws(text, 0)
    try:
        value, end = _scan_once(text, pos)
    except (StopIteration, RecursionError, ValueError, SystemError) as exc:
        raise _explain(text, pos, exc) from None
    end = _skip_ws(text, end)
    if end != len(text):
        line, col = _line_col(text, end)
        raise JSONError(f"extra data at line {line} column {col}")
    return value


def _explain(text, pos, exc):
    """The JSONError for a document the scanner refused with `exc`. _json builds most
    of its messages with json.decoder's exception class, which it only finds when that
    module is already imported (else it raises a bare SystemError): on this rare path,
    import it and let the same C scanner, not the recursive json package, say again
    what is wrong, so that the error path is as bounded as the parse."""
    if isinstance(exc, SystemError):
        import json.decoder  # noqa: F401

        try:
            _scan_once(text, pos)
        except (StopIteration, RecursionError, ValueError, SystemError) as again:
            if not isinstance(again, SystemError):
                return _explain(text, pos, again)
        return JSONError("malformed JSON")
    if isinstance(exc, StopIteration):
        line, col = _line_col(text, exc.value)
        return JSONError(f"expecting value at line {line} column {col}")
    if isinstance(exc, RecursionError):
        return JSONError("nested too deeply")
    if isinstance(exc, JSONError):
        return exc
    return JSONError(str(exc))


def _skip_ws(text, pos):
    n = len(text)
    while pos < n and text[pos] in " \t\n\r":
        pos += 1
    return pos


def dumps(value, indent=None):
    """Serialise dicts, lists, strings, numbers, booleans and None."""
    if indent is None and _json is not None:
        return "".join(_compact_encoder(value, 0))
    parts = []
    _encode(value, parts, indent, 0)
    return "".join(parts)


def _encode(value, out, indent, level):
    if isinstance(value, str):
        out.append(_quote(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(float.__repr__(value))
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        out.append("{")
        sep, pad, end = _separators(indent, level)
        first = True
        for key, item in value.items():
            out.append(pad if first else sep)
            first = False
            out.append(_quote(str(key)))
            out.append(": " if indent is not None else ":")
            _encode(item, out, indent, level + 1)
        out.append(end + "}")
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        out.append("[")
        sep, pad, end = _separators(indent, level)
        for i, item in enumerate(value):
            out.append(sep if i else pad)
            _encode(item, out, indent, level + 1)
        out.append(end + "]")
    else:
        _unencodable(value)


def _separators(indent, level):
    if indent is None:
        return ",", "", ""
    inner = "\n" + " " * (indent * (level + 1))
    return "," + inner, inner, "\n" + " " * (indent * level)


MAX_DOCUMENT = 16 << 20  # configs are kilobytes; one with a big seccomp profile, ~100 KiB


def read_limited(f, max_size=MAX_DOCUMENT):
    """All of binary file `f`, or ValueError past `max_size`: a document read from
    a pipe must not eat the host's memory."""
    data = f.read(max_size + 1)
    if len(data) > max_size:
        raise ValueError(f"larger than {max_size >> 20} MiB")
    return data


def load_stream(f, max_size=MAX_DOCUMENT):
    return loads(read_limited(f, max_size))


def load_file(path, max_size=MAX_DOCUMENT):
    """The JSON document in regular file `path` (see files.read_regular): OSError when
    it cannot be read, ValueError when it is no regular file, too large or malformed."""
    from slruntime import files

    return loads(files.read_regular(path, max_size))


def write_file_atomic(path, value, indent=None, mode=0o600):
    """Write JSON to `path` through a temporary file and rename, so readers never
    see a half-written file."""
    import os

    tmp = f"{path}.tmp{os.getpid()}"
    # A new file, never through a link planted at this predictable name.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(tmp, flags, mode)
    except FileExistsError:  # left by a process of the same pid that died mid-write, or planted
        os.unlink(tmp)
        fd = os.open(tmp, flags, mode)
    try:
        os.write(fd, dumps(value, indent).encode())
    finally:
        os.close(fd)
    os.rename(tmp, path)

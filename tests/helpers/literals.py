"""Read string literals back the way each compiler would (the tests check that
a model's names survive the deploy kit's escaping, and that nothing breaks out)."""

from __future__ import annotations

import re

__all__ = ["c_literal", "kotlin_literal", "swift_literal"]


def _strip(lit: str) -> str:
    assert lit.startswith('"') and lit.endswith('"') and len(lit) >= 2, lit
    body = lit[1:-1]
    assert "\n" not in body and "\r" not in body, "a raw line break inside a literal"
    return body


def c_literal(lit: str) -> str:
    """C/C++: ``\\\\ \\" \\?`` and three-digit octal escapes over UTF-8 bytes."""
    body, out, i = _strip(lit), bytearray(), 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            m = re.match(r"[0-7]{1,3}", body[i + 1 :])
            if m:
                out.append(int(m.group(0), 8))
                i += 1 + len(m.group(0))
                continue
            out += {"\\": b"\\", '"': b'"', "?": b"?", "n": b"\n", "t": b"\t"}[nxt]
            i += 2
            continue
        assert ch != '"', "an unescaped quote ends the literal early"
        out += ch.encode("ascii")
        i += 1
    return out.decode("utf-8", "surrogateescape")


def kotlin_literal(lit: str) -> str:
    """Kotlin: ``\\\\ \\" \\$ \\n \\r \\t`` and ``\\uXXXX`` (UTF-16 units); a raw ``$`` is a template."""
    body, units, i = _strip(lit), [], 0
    esc = {"\\": "\\", '"': '"', "$": "$", "n": "\n", "r": "\r", "t": "\t", "b": "\b"}
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            if body[i + 1] == "u":
                units.append(int(body[i + 2 : i + 6], 16))
                i += 6
                continue
            units.append(ord(esc[body[i + 1]]))
            i += 2
            continue
        assert ch not in '"$', f"an unescaped {ch!r} in a Kotlin literal"
        units.append(ord(ch))
        i += 1
    data = b"".join(u.to_bytes(2, "big") for u in units)
    return data.decode("utf-16-be", "surrogatepass")


def swift_literal(lit: str) -> str:
    """Swift: ``\\\\ \\" \\n \\r \\t \\0`` and ``\\u{X}``; a raw ``\\(`` would interpolate."""
    body, out, i = _strip(lit), [], 0
    esc = {"\\": "\\", '"': '"', "n": "\n", "r": "\r", "t": "\t", "0": "\0"}
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            if body[i + 1] == "u":
                end = body.index("}", i)
                out.append(chr(int(body[i + 3 : end], 16)))
                i = end + 1
                continue
            out.append(esc[body[i + 1]])
            i += 2
            continue
        assert ch != '"', "an unescaped quote ends the literal early"
        out.append(ch)
        i += 1
    return "".join(out)

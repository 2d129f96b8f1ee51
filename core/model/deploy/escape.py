"""Names from a model are data an attacker chose: quotes, backslashes, ``*/``,
newlines, template markers. Each target language gets them as string literals
built here (never pasted into code or comments raw), identifiers are reduced
to ``[A-Za-z0-9_]``, and Markdown escapes every character it acts on."""

from __future__ import annotations

import keyword
import re

__all__ = ["c_str", "kotlin_str", "swift_str", "py_str", "md", "md_code", "identifier"]


def c_str(text: str) -> str:
    """A C/C++ string literal: printable ASCII as is (``"``, ``\\`` and ``?``
    escaped; ``?`` so no trigraph forms), every other byte of the UTF-8 as a
    three-digit octal escape (octal escapes stop after three digits; hex ones
    would swallow the next character)."""
    out = ['"']
    for b in str(text).encode("utf-8", "surrogateescape"):
        ch = chr(b)
        if ch in '"\\?':
            out.append("\\" + ch)
        elif 0x20 <= b < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    out.append('"')
    return "".join(out)


_KOTLIN = {"\\": "\\\\", '"': '\\"', "$": "\\$", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _utf16_escapes(ch: str, fmt: str) -> str:
    data = ch.encode("utf-16-be", "surrogatepass")
    units = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    return "".join(fmt.format(u) for u in units)


def kotlin_str(text: str) -> str:
    """A Kotlin string literal (``$`` escaped: no template expansion)."""
    out = ['"']
    for ch in str(text):
        if ch in _KOTLIN:
            out.append(_KOTLIN[ch])
        elif 0x20 <= ord(ch) < 0x7F:
            out.append(ch)
        else:
            out.append(_utf16_escapes(ch, "\\u{:04x}"))
    out.append('"')
    return "".join(out)


_SWIFT = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}


def swift_str(text: str) -> str:
    """A Swift string literal (``\\(`` cannot interpolate: backslashes are escaped)."""
    out = ['"']
    for ch in str(text):
        if ch in _SWIFT:
            out.append(_SWIFT[ch])
        elif 0x20 <= ord(ch) < 0x7F:
            out.append(ch)
        elif 0xD800 <= ord(ch) <= 0xDFFF:  # a lone surrogate: not a Swift scalar
            out.append("\\u{FFFD}")
        else:
            out.append(f"\\u{{{ord(ch):x}}}")
    out.append('"')
    return "".join(out)


def py_str(text: str) -> str:
    """A Python string literal (ASCII only)."""
    return ascii(str(text))


_MD_SPECIAL = set("\\`*_{}[]()#+-.!|<>~:$&\"'")


def md(text: object) -> str:
    """Text inside Markdown, as data: every character Markdown, HTML or a
    table acts on is escaped, bare links are broken, newlines become spaces."""
    s = str(text if text is not None else "")
    for pattern, cut in (("://", ":\u200b//"), ("www.", "www\u200b."), ("@", "@\u200b")):
        s = s.replace(pattern, cut)
    s = "".join("\\" + c if c in _MD_SPECIAL else c for c in s)
    return re.sub(r"[\r\n\t]+", " ", s)


def md_code(text: object) -> str:
    """An inline code span no backtick inside can close (newlines as spaces)."""
    s = re.sub(r"[\r\n\t]+", " ", str(text if text is not None else ""))
    longest = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or not s else ""
    return f"{fence}{pad}{s}{pad}{fence}"


_RESERVED = set(keyword.kwlist) | {
    # C, C++, Kotlin and Swift words an identifier must not be
    "auto", "bool", "break", "case", "char", "class", "const", "continue", "default", "do",
    "double", "else", "enum", "extern", "float", "for", "fun", "func", "goto", "if", "import",
    "in", "int", "is", "let", "long", "new", "null", "object", "package", "private", "public",
    "return", "self", "short", "signed", "sizeof", "static", "struct", "switch", "template",
    "this", "throw", "true", "false", "typedef", "union", "unsigned", "val", "var", "void",
    "volatile", "when", "while",
}  # fmt: skip


def identifier(text: str, prefix: str = "t", taken: set[str] | None = None) -> str:
    """A safe identifier for any language here: ``[A-Za-z_][A-Za-z0-9_]*``,
    never a keyword, unique within ``taken`` (which it updates)."""
    s = re.sub(r"[^A-Za-z0-9_]+", "_", str(text)).strip("_")[:48] or prefix
    if s[0].isdigit() or s.lower() in _RESERVED:
        s = f"{prefix}_{s}"
    if taken is not None:
        base, k = s, 2
        while s in taken:
            s = f"{base}_{k}"
            k += 1
        taken.add(s)
    return s

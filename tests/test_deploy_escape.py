"""Names inside a model are an attacker's choice. A model whose input, weight
and custom op are named with quotes, backslashes, ``*/``, newlines, template
and interpolation markers, trigraphs and markup gets a kit where every name
is a string literal that reads back as the name in each language, every
identifier is plain, and the README shows the names as text."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from core.model.deploy import kit_spec, render_kit
from core.model.deploy.escape import c_str, identifier, kotlin_str, md, swift_str
from core.model.reader import read_model
from tests.helpers.crafted import named_model
from tests.helpers.literals import c_literal, kotlin_literal, swift_literal

EVIL = 'in"put\\ */ /* \n#include <evil> ${HOME} $x \\(x) ??= </script><b>ö😀 `x` |a|\r\t'
OP = 'op"*/\nsystem("rm -rf /")//'
WEIGHT = 'w\\"\n*/'
GXX = shutil.which("g++")


@pytest.fixture(scope="module")
def kit() -> dict[str, str]:
    data = named_model(OP, WEIGHT, EVIL)
    spec = kit_spec(read_model(data), 'mo"del\n*/.tflite', origin="uploaded as " + EVIL)
    files = render_kit(spec, data, ("python", "android", "ios", "cpp", "micro"))
    return {p: b.decode("utf-8") for p, b in files.items() if p != "model.tflite"}


def test_each_language_reads_the_name_back_exactly() -> None:
    for name in (EVIL, OP, WEIGHT, "", "plain"):
        assert c_literal(c_str(name)) == name
        assert kotlin_literal(kotlin_str(name)) == name
        assert swift_literal(swift_str(name)) == name


def test_python_kit_is_valid_and_carries_the_name(kit: dict[str, str]) -> None:
    tree = ast.parse(kit["python/run.py"])
    sigs = next(
        ast.literal_eval(n.value)
        for n in tree.body
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "SIGNATURES"
    )
    (sig,) = sigs.values()
    assert sig["inputs"][0]["name"] == EVIL
    assert all(ord(c) < 128 for c in kit["python/run.py"])


def test_kotlin_swift_cpp_strings_read_back_and_nothing_breaks_out(kit: dict[str, str]) -> None:
    from tests.test_deploy_kit import parse_specs

    for path in ("android/ModelRunner.kt", "ios/ModelRunner.swift", "cpp/main.cc"):
        text = kit[path]
        names = [row[0] for row in parse_specs(text, path)]
        assert EVIL in names, (path, names)
        code = re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', text)  # the code outside literals
        for piece in ("evil", "HOME", "</script>", "rm -rf", "??="):
            assert piece not in code, (path, piece)
    assert re.search(
        r"^package com\.example\.litert\.[a-z_][a-z0-9_]*$", kit["android/ModelRunner.kt"], re.M
    )


def test_identifiers_are_plain() -> None:
    taken: set[str] = set()
    ids = [identifier(n, taken=taken) for n in (EVIL, EVIL, "class", "9lives", "")]
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", i) for i in ids)
    assert len(set(ids)) == len(ids) and ids[2] == "t_class" and ids[3] == "t_9lives"


def test_the_readme_shows_names_as_text(kit: dict[str, str]) -> None:
    readme = kit["README.md"]
    assert "<b>" not in readme and "</script>" not in readme
    assert "\n#include" not in readme
    for line in readme.splitlines():
        if line.startswith("|"):
            assert line.endswith("|"), line
    assert md(EVIL).count("\n") == 0


@pytest.mark.skipif(GXX is None, reason="no g++ (.ci/run installs it)")
def test_the_cpp_literal_and_the_micro_headers_compile(kit: dict[str, str], tmp_path: Path) -> None:
    stub = tmp_path / "inc" / "tensorflow" / "lite" / "micro"
    stub.mkdir(parents=True)
    (stub / "micro_mutable_op_resolver.h").write_text(
        "enum TfLiteStatus { kTfLiteOk, kTfLiteError };\n"
        "namespace tflite { template <unsigned N> class MicroMutableOpResolver {}; }\n"
    )
    for name in ("op_resolver.h", "model_data.h"):
        (tmp_path / name).write_text(kit[f"micro/{name}"])
    (tmp_path / "model_data.cc").write_text(kit["micro/model_data.cc"])
    main = tmp_path / "main.cc"
    main.write_text(
        '#include <cstdio>\n#include "op_resolver.h"\n#include "model_data.h"\n'
        f"static const char kName[] = {c_str(EVIL)};\n"
        "int main() { ModelOpResolver r; if (RegisterModelOps(r) != kTfLiteOk) return 1;\n"
        "  fwrite(kName, 1, sizeof(kName) - 1, stdout); return g_model_data_len > 0 ? 0 : 1; }\n"
    )
    exe = tmp_path / "evil"
    subprocess.run(
        [GXX, "-std=c++17", "-Wall", "-Werror", "-Wno-trigraphs", f"-I{tmp_path / 'inc'}",
         str(main), str(tmp_path / "model_data.cc"), "-o", str(exe)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    out = subprocess.run([str(exe)], capture_output=True, check=True).stdout
    assert out == EVIL.encode("utf-8")
    code = re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', kit["micro/op_resolver.h"])
    assert "system(" not in code and "rm -rf" not in code

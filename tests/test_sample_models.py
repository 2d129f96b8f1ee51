"""The sample models folder agrees with its manifest (fast: no TensorFlow import)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pytest

SAMPLES = Path(__file__).resolve().parent.parent / "sample_models"
MANIFEST = SAMPLES / "manifest.json"
KINDS = {"saved_model_zip", "keras", "npz"}
NOT_IN_MANIFEST = {"build.py", "README.md", "manifest.json"}
SIZE_BUDGET = 3 * 1024 * 1024


def _manifest() -> list[dict]:
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


ENTRIES = _manifest()
BY_FILE = {e["file"]: e for e in ENTRIES}
MODELS = [e for e in ENTRIES if e["kind"] != "npz"]


def _ids(entries: list[dict]) -> list[str]:
    return [e["file"] for e in entries]


def test_manifest_is_a_list_of_unique_files() -> None:
    assert isinstance(ENTRIES, list) and ENTRIES
    assert len(BY_FILE) == len(ENTRIES), "duplicate file names in manifest"


def test_every_file_in_folder_is_listed() -> None:
    present = {
        p.name
        for p in SAMPLES.iterdir()
        if p.is_file() and p.name not in NOT_IN_MANIFEST and not p.name.startswith(".")
    }
    assert present == set(BY_FILE), "files and manifest entries differ"


def test_total_size_within_budget() -> None:
    assert sum(e["size_bytes"] for e in ENTRIES) < SIZE_BUDGET


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids(ENTRIES))
def test_entry_fields(entry: dict) -> None:
    for field in ("file", "kind", "title", "description", "origin", "sha256", "size_bytes"):
        assert entry.get(field) not in (None, ""), f"missing {field}"
    assert entry["kind"] in KINDS
    assert entry["origin"]["script"] == "sample_models/build.py"
    assert entry["origin"]["function"].startswith("build_")
    assert "/" not in entry["file"] and "\\" not in entry["file"]


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids(ENTRIES))
def test_file_matches_sha256_and_size(entry: dict) -> None:
    path = SAMPLES / entry["file"]
    assert path.is_file()
    data = path.read_bytes()
    assert len(data) == entry["size_bytes"]
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]


NPZ = [e for e in ENTRIES if e["kind"] == "npz"]


@pytest.mark.parametrize("entry", NPZ, ids=_ids(NPZ))
def test_npz_has_listed_arrays(entry: dict) -> None:
    with np.load(SAMPLES / entry["file"], allow_pickle=False) as npz:
        assert set(npz.files) == set(entry["arrays"])
        for key, spec in entry["arrays"].items():
            assert list(npz[key].shape) == spec["shape"], key
            assert str(npz[key].dtype) == spec["dtype"], key


ZIPS = [e for e in ENTRIES if e["kind"] == "saved_model_zip"]


@pytest.mark.parametrize("entry", ZIPS, ids=_ids(ZIPS))
def test_saved_model_zip_layout(entry: dict) -> None:
    with zipfile.ZipFile(SAMPLES / entry["file"]) as zf:
        names = zf.namelist()
    parts = [PurePosixPath(n).parts for n in names]
    assert all(not PurePosixPath(n).is_absolute() and ".." not in p for n, p in zip(names, parts))
    tops = {p[0] for p in parts}
    assert len(tops) == 1, f"expected one top-level folder, got {tops}"
    top = tops.pop()
    assert f"{top}/saved_model.pb" in names
    assert any(n.startswith(f"{top}/variables/") for n in names)


@pytest.mark.parametrize("entry", ZIPS, ids=_ids(ZIPS))
def test_saved_model_signatures_described(entry: dict) -> None:
    sigs = entry["signatures"]
    assert sorted(sigs) == entry["signature_keys"]
    merged = {}
    for sig in sigs.values():
        assert sig["inputs"] and sig["outputs"]
        merged.update(sig["inputs"])
    assert merged == entry["inputs"]
    for spec in entry["inputs"].values():
        assert set(spec) == {"shape", "dtype"}
        assert all(d is None or (isinstance(d, int) and d > 0) for d in spec["shape"])


@pytest.mark.parametrize("entry", ZIPS, ids=_ids(ZIPS))
def test_saved_model_expected_covers_every_setting(entry: dict) -> None:
    settings = {"float32", "float16", "dynamic", "int8-float-io", "int8", "int16x8"}
    expected = entry["expected"]
    assert settings <= set(expected)
    for setting in settings:
        verdict = expected[setting]
        assert verdict == "converts" or verdict.startswith(("fails: ", "converts; LiteRT: "))


def test_keras_file_is_safe_mode_loadable_shape() -> None:
    entry = BY_FILE["digits_classifier.keras"]
    with zipfile.ZipFile(SAMPLES / entry["file"]) as zf:
        assert {"config.json", "metadata.json", "model.weights.h5"} <= set(zf.namelist())
        config = zf.read("config.json").decode("utf-8")
    assert '"Lambda"' not in config, "a Lambda layer would not load in safe mode"
    assert json.loads(config)["class_name"] == "Functional"


@pytest.mark.parametrize("entry", MODELS, ids=_ids(MODELS))
def test_data_files_fit_model_inputs(entry: dict) -> None:
    for field in ("calibration", "eval"):
        name = entry.get(field)
        if name is None:
            continue
        data = BY_FILE[name]
        assert data["kind"] == "npz"
        for input_name, spec in entry["inputs"].items():
            assert input_name in data["arrays"], f"{name} lacks input {input_name!r}"
            arr = data["arrays"][input_name]
            assert arr["dtype"] == spec["dtype"]
            assert len(arr["shape"]) == len(spec["shape"])
            assert all(d is None or d == a for d, a in zip(spec["shape"][1:], arr["shape"][1:]))
        if field == "eval":
            assert "labels" in data["arrays"]
            n = data["arrays"]["labels"]["shape"][0]
            assert all(data["arrays"][k]["shape"][0] == n for k in entry["inputs"])


def test_digits_accuracy_recorded() -> None:
    assert BY_FILE["digits_classifier.zip"]["expected"]["test_accuracy"] >= 0.95


def test_select_tf_ops_model_needs_select_ops() -> None:
    expected = BY_FILE["select_tf_ops.zip"]["expected"]
    assert expected["default_builtins"].startswith("fails: ")
    assert "TF Select ops: Cumprod" in expected["default_builtins"]
    assert expected["with_select_tf_ops"].startswith("converts")


def test_sequence_lstm_fuses_to_builtin_lstm() -> None:
    entry = BY_FILE["sequence_lstm.zip"]
    assert entry["expected"]["float32"] == "converts"
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in entry["checks"]["float32"]["ops"]
    assert "WHILE" not in entry["checks"]["float32"]["ops"]


def test_multi_signature_has_no_default() -> None:
    entry = BY_FILE["multi_signature.zip"]
    assert entry["signature_keys"] == ["decode", "encode"]
    assert "serving_default" not in entry["signature_keys"]

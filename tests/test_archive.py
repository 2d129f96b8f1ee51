"""Safe unpacking: every bad archive gets its own clear error and leaves
nothing behind; good archives in every layout are found."""

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from core.errors import ModelFormatError, Phase, StudioError, UnpackError, UnsafeArchiveError
from core.model.archive import ModelKind, UnpackLimits, detect_kind, prepare_model

SM = {
    "saved_model.pb": b"\x08\x01pb",
    "variables/variables.index": b"idx",
    "variables/variables.data-00000-of-00001": b"data" * 10,
}


def make_zip(path: Path, members: dict[str, bytes], prefix: str = "") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(prefix + name, data)
    return path


def make_tar(path: Path, members: dict[str, bytes], prefix: str = "") -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def leftovers(workdir: Path) -> list[str]:
    return sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*"))


@pytest.fixture
def workdir(tmp_path):
    d = tmp_path / "work"
    d.mkdir()
    return d


@pytest.mark.parametrize("maker", [make_zip, make_tar])
@pytest.mark.parametrize("prefix", ["", "my_model/", "export/1/"])
def test_good_archives_find_the_saved_model(tmp_path, workdir, maker, prefix):
    ext = ".zip" if maker is make_zip else ".tar.gz"
    archive = maker(tmp_path / f"model{ext}", SM, prefix)
    with prepare_model(archive, workdir) as pm:
        assert pm.kind is ModelKind.SAVED_MODEL
        assert (pm.path / "saved_model.pb").read_bytes() == SM["saved_model.pb"]
        assert pm.source_size == archive.stat().st_size
        assert pm.path.is_relative_to(workdir)
    assert leftovers(workdir) == []  # the unpack folder is removed afterwards


def _zip_with_symlink(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("saved_model.pb", b"pb")
        info = zipfile.ZipInfo("variables")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc")
    return path


def _tar_with(path: Path, kind: str) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("saved_model.pb")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"pb"))
        link = tarfile.TarInfo("evil")
        if kind == "symlink":
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        elif kind == "hardlink":
            link.type, link.linkname = tarfile.LNKTYPE, "saved_model.pb"
        else:
            link.type = tarfile.FIFOTYPE
        tf.addfile(link)
    return path


def _bomb(path: Path) -> Path:
    # 80 MiB of zeros compresses to ~80 KiB: far past the ratio limit
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        with zf.open("saved_model.pb", "w") as f:
            chunk = b"\0" * (1 << 20)
            for _ in range(80):
                f.write(chunk)
    return path


def _lying_sizes(path: Path) -> Path:
    """A zip whose central directory claims tiny sizes: only counting the real
    bytes while extracting catches it."""
    _bomb(path)
    data = bytearray(path.read_bytes())
    # patch the uncompressed size in the central directory record to 10 bytes
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = (10).to_bytes(4, "little")
    lh = data.find(b"PK\x03\x04")
    data[lh + 22 : lh + 26] = (10).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return path


BAD = {
    "not an archive": (
        lambda p: (p.write_bytes(b"hello, I am text" * 10), p)[1],
        UnpackError,
        "not a valid zip archive",
    ),
    "empty file": (lambda p: (p.write_bytes(b""), p)[1], ModelFormatError, "empty"),
    "truncated zip": (
        lambda p: (p.write_bytes(make_zip(p, SM).read_bytes()[:60]), p)[1],
        UnpackError,
        "cut short",
    ),
    "truncated tar.gz": (
        lambda p: (p.write_bytes(make_tar(p, SM).read_bytes()[:40]), p)[1],
        UnpackError,
        "cut short",
    ),
    "absolute path": (
        lambda p: make_zip(p, {"/tmp/evil/saved_model.pb": b"x"}),
        UnsafeArchiveError,
        "absolute path",
    ),
    "dot-dot": (
        lambda p: make_zip(p, {"../../evil/saved_model.pb": b"x"}),
        UnsafeArchiveError,
        "escapes",
    ),
    "tar dot-dot": (
        lambda p: make_tar(p, {"a/../../saved_model.pb": b"x"}),
        UnsafeArchiveError,
        "escapes",
    ),
    "zip symlink": (_zip_with_symlink, UnsafeArchiveError, "symbolic link"),
    "tar symlink": (lambda p: _tar_with(p, "symlink"), UnsafeArchiveError, "link"),
    "tar hardlink": (lambda p: _tar_with(p, "hardlink"), UnsafeArchiveError, "link"),
    "tar fifo": (lambda p: _tar_with(p, "fifo"), UnsafeArchiveError, "special file"),
    "too many members": (
        lambda p: make_zip(p, {f"f{i}": b"" for i in range(60)}),
        UnsafeArchiveError,
        "more than 50 members",
    ),
    "zip bomb": (_bomb, UnsafeArchiveError, "zip bomb"),
    "sizes that lie": (_lying_sizes, UnpackError, "corrupt"),
    "no saved_model.pb": (
        lambda p: make_zip(p, {"model/weights.bin": b"w"}),
        ModelFormatError,
        "No saved_model.pb",
    ),
    "two models": (
        lambda p: make_zip(
            p, {**{"a/" + k: v for k, v in SM.items()}, **{"b/" + k: v for k, v in SM.items()}}
        ),
        ModelFormatError,
        "holds 2 models",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_archives_get_a_clear_error_and_leave_nothing(tmp_path, workdir, case):
    build, err_type, words = BAD[case]
    name = "model.tar.gz" if "tar" in case else "model.zip"
    archive = build(tmp_path / name)
    limits = UnpackLimits(max_members=50, max_total_bytes=200 << 20, ratio_floor_bytes=1 << 20)
    before = set(os.listdir(tmp_path))
    with pytest.raises(err_type) as e, prepare_model(archive, workdir, limits):
        pass
    err = e.value
    assert isinstance(err, StudioError)
    assert words in err.message
    assert err.hint, "every error says how to fix it"
    assert err.phase in (Phase.UNPACK, Phase.LOAD)
    assert leftovers(workdir) == []
    assert set(os.listdir(tmp_path)) == before  # nothing written beside the job folder
    assert not Path("/tmp/evil").exists()


def test_total_size_limit(tmp_path, workdir):
    archive = make_zip(tmp_path / "m.zip", {**SM, "variables/big": os.urandom(3 << 20)})
    with pytest.raises(UnsafeArchiveError, match="more than 2 MiB"):
        with prepare_model(archive, workdir, UnpackLimits(max_total_bytes=2 << 20)):
            pass
    assert leftovers(workdir) == []


def test_detects_formats_by_content(tmp_path):
    sm = tmp_path / "sm"
    sm.mkdir()
    (sm / "saved_model.pb").write_bytes(b"pb")
    assert detect_kind(sm) == "saved_model_dir"
    (tmp_path / "m.tflite").write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\0" * 32)
    assert detect_kind(tmp_path / "m.tflite") == "tflite"
    (tmp_path / "renamed.bin").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 32)
    assert detect_kind(tmp_path / "renamed.bin") == "h5"
    make_zip(tmp_path / "k.zip", {"config.json": b"{}", "model.weights.h5": b""})
    assert detect_kind(tmp_path / "k.zip") == "keras"
    (tmp_path / "fake.tflite").write_bytes(b"not a flatbuffer at all")
    with pytest.raises(ModelFormatError, match="TFL3"):
        detect_kind(tmp_path / "fake.tflite")


def test_saved_model_directory_is_used_in_place(tmp_path, workdir):
    sm = tmp_path / "export"
    for name, data in SM.items():
        (sm / name).parent.mkdir(parents=True, exist_ok=True)
        (sm / name).write_bytes(data)
    with prepare_model(sm, workdir) as pm:
        assert pm.path == sm and pm.kind is ModelKind.SAVED_MODEL
    assert sm.exists() and leftovers(workdir) == []

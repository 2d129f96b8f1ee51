"""Safe unpacking and format detection of uploaded models.

Uploads are untrusted. Archives are extracted member by member into a fresh
folder, counting the real bytes written (declared sizes lie), and refused on
absolute paths, ``..``, links, too many members, too many bytes or a
suspicious compression ratio.
"""

from __future__ import annotations

import contextlib
import enum
import os
import shutil
import stat
import struct
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from core.errors import ModelFormatError, UnpackError, UnsafeArchiveError

__all__ = [
    "ModelKind",
    "UnpackLimits",
    "PreparedModel",
    "detect_kind",
    "prepare_model",
    "safe_extract",
]

_CHUNK = 1 << 20


class ModelKind(str, enum.Enum):
    SAVED_MODEL = "saved_model"
    KERAS = "keras"
    H5 = "h5"
    TFLITE = "tflite"


@dataclass(frozen=True)
class UnpackLimits:
    max_members: int = 10_000
    max_total_bytes: int = 4 << 30
    max_ratio: float = 200.0  # uncompressed / compressed, over the whole archive
    ratio_floor_bytes: int = 64 << 20  # small archives may compress well; don't flag them


@dataclass(frozen=True)
class PreparedModel:
    kind: ModelKind
    path: Path  # SavedModel directory, or the model file
    source_name: str  # the name the user gave
    source_size: int  # bytes of the upload as given (archive or directory total)


_SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _head(path: Path, n: int = 512) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_MAX_SNIFF_MEMBERS = 10_000  # a .keras file holds a handful


def zip_member_count(path: Path) -> int | None:
    """Members a zip archive declares, read from its end record alone (a
    million-entry central directory is never loaded); None if there is none."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            tail_len = min(size, 65_535 + 22 + 20)
            f.seek(size - tail_len)
            tail = f.read(tail_len)
            at = tail.rfind(_EOCD)
            if at < 0 or at + 22 > len(tail):
                return None
            count = int(struct.unpack_from("<H", tail, at + 10)[0])
            loc = at - 20
            if count != 0xFFFF or loc < 0 or tail[loc : loc + 4] != _EOCD64_LOCATOR:
                return count
            # zip64: the locator points at the zip64 end record, whose count is 8 bytes
            (offset,) = struct.unpack_from("<Q", tail, loc + 8)
            if offset + 40 > size:
                return None
            f.seek(offset)
            rec = f.read(40)
    except OSError:
        return None
    if len(rec) < 40 or rec[:4] != _EOCD64:
        return None
    return int(struct.unpack_from("<Q", rec, 32)[0])


def _is_keras_zip(path: Path) -> bool:
    n = zip_member_count(path)
    if n is None or n > _MAX_SNIFF_MEMBERS:
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
    return "config.json" in names and any(n.endswith(".weights.h5") for n in names)


def detect_kind(path: str | os.PathLike[str]) -> str:
    """Name the upload's container: ``saved_model_dir``, ``zip``, ``tar``,
    ``keras``, ``h5`` or ``tflite``. Looks at content, not only the name."""
    p = Path(path)
    if p.is_dir():
        return "saved_model_dir"
    if not p.is_file():
        raise ModelFormatError(f"{p.name}: no such file.", "Check the path and try again.")
    head = _head(p)
    if not head:
        raise ModelFormatError(f"{p.name} is empty.", "Upload the model file again.")
    name = p.name.lower()
    if head[4:8] == b"TFL3":
        return "tflite"
    if head.startswith(_HDF5_MAGIC):
        return "h5"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        if name.endswith(".keras") or _is_keras_zip(p):
            return "keras"
        return "zip"
    if (
        head[:2] == b"\x1f\x8b"
        or head[257:262] == b"ustar"
        or name.endswith((".tar", ".tar.gz", ".tgz"))
    ):
        return "tar"
    if name.endswith(".tflite"):
        raise ModelFormatError(
            f"{p.name} is not a TensorFlow Lite model (no TFL3 identifier).",
            "Upload a .tflite file produced by the TFLite converter.",
        )
    if name.endswith((".zip", ".keras")):
        raise UnpackError(
            f"{p.name} is not a valid zip archive (it may be cut short).",
            "Create the archive again, e.g. `zip -r model.zip my_saved_model/`, and upload it.",
        )
    raise ModelFormatError(
        f"{p.name} is not a model format TFLite Studio reads.",
        "Upload a SavedModel as .zip or .tar.gz, a .keras or .h5 file, or a .tflite file.",
    )


def _check_member_name(name: str) -> PurePosixPath:
    if "\x00" in name:
        raise UnsafeArchiveError(
            f"The archive has a member name with a NUL byte: {name!r}.",
            "Re-create the archive with ordinary file names.",
        )
    norm = name.replace("\\", "/")
    pp = PurePosixPath(norm)
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        raise UnsafeArchiveError(
            f"The archive holds an absolute path: {name!r}.",
            "Re-create the archive with paths relative to the model folder.",
        )
    if ".." in pp.parts:
        raise UnsafeArchiveError(
            f"The archive holds a path that escapes its folder: {name!r}.",
            "Re-create the archive without '..' in member paths.",
        )
    return pp


class _Budget:
    def __init__(self, limits: UnpackLimits, compressed_size: int) -> None:
        self.limits = limits
        self.compressed = max(compressed_size, 1)
        self.written = 0
        self.members = 0

    def add_member(self, n: int = 1) -> None:
        self.members += n
        if self.members > self.limits.max_members:
            raise UnsafeArchiveError(
                f"The archive has more than {self.limits.max_members} members.",
                "Upload only the SavedModel folder (saved_model.pb, variables/, assets/).",
            )

    def add_bytes(self, n: int) -> None:
        self.written += n
        if self.written > self.limits.max_total_bytes:
            raise UnsafeArchiveError(
                f"The archive unpacks to more than {self.limits.max_total_bytes >> 20} MiB.",
                "Upload a smaller model, or ask the server admin to raise the unpack limit.",
            )
        if (
            self.written > self.limits.ratio_floor_bytes
            and self.written / self.compressed > self.limits.max_ratio
        ):
            raise UnsafeArchiveError(
                "The archive expands more than "
                f"{self.limits.max_ratio:.0f}x its size: it looks like a zip bomb.",
                "Upload the model folder archived normally.",
            )


def _copy_counted(src: IO[bytes], dest: Path, budget: _Budget) -> None:
    with open(dest, "wb") as out:
        while True:
            chunk = src.read(_CHUNK)
            if not chunk:
                break
            budget.add_bytes(len(chunk))
            out.write(chunk)


def _target(root: Path, pp: PurePosixPath) -> Path:
    dest = (root / Path(*pp.parts)).resolve() if pp.parts else root
    if dest != root and root not in dest.parents:
        raise UnsafeArchiveError(
            f"The archive holds a path that escapes its folder: {pp!s}.",
            "Re-create the archive with plain relative paths.",
        )
    return dest


def _extract_zip(archive: Path, root: Path, budget: _Budget) -> None:
    declared = zip_member_count(archive)
    if declared is not None and declared > budget.limits.max_members:
        # refused from the end record: the central directory is not even read
        budget.add_member(declared)
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise UnpackError(
            f"{archive.name} is not a readable zip archive: it is cut short or corrupt.",
            "Create the archive again and upload the complete file.",
        ) from None
    with zf:
        for info in zf.infolist():
            budget.add_member()
            pp = _check_member_name(info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UnsafeArchiveError(
                    f"The archive holds a symbolic link: {info.filename!r}.",
                    "Archive the real files instead of links (zip without -y).",
                )
            if info.flag_bits & 0x1:
                raise UnpackError(
                    f"{info.filename!r} is encrypted.",
                    "Upload an archive without a password.",
                )
            dest = _target(root, pp)
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src:
                    _copy_counted(src, dest, budget)
            except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError) as e:
                raise UnpackError(
                    f"{archive.name} is cut short or corrupt ({info.filename}: {e}).",
                    "Create the archive again and upload the complete file.",
                ) from None


def _extract_tar(archive: Path, root: Path, budget: _Budget) -> None:
    try:
        tf = tarfile.open(archive, mode="r:*")  # noqa: SIM115  (closed by `with tf` below)
    except (tarfile.TarError, EOFError, OSError):
        raise UnpackError(
            f"{archive.name} is not a readable tar archive: it is cut short or corrupt.",
            "Create it again with `tar czf model.tar.gz my_saved_model/` and upload it.",
        ) from None
    try:
        with tf:
            for member in tf:
                budget.add_member()
                pp = _check_member_name(member.name)
                if member.issym() or member.islnk():
                    raise UnsafeArchiveError(
                        f"The archive holds a link: {member.name!r}.",
                        "Archive the real files instead of links (tar without -h is fine; "
                        "remove links first).",
                    )
                if not (member.isfile() or member.isdir()):
                    raise UnsafeArchiveError(
                        f"The archive holds a special file: {member.name!r}.",
                        "Archive only regular files and folders.",
                    )
                dest = _target(root, pp)
                if member.isdir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                src = tf.extractfile(member)
                if src is None:
                    continue
                with src:
                    _copy_counted(src, dest, budget)
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise UnpackError(
            f"{archive.name} is cut short or corrupt ({e}).",
            "Create the archive again and upload the complete file.",
        ) from None


def safe_extract(
    archive: str | os.PathLike[str], dest: str | os.PathLike[str], limits: UnpackLimits
) -> None:
    """Extract a zip or tar archive into ``dest`` (which must be empty)."""
    a = Path(archive)
    root = Path(dest).resolve()
    root.mkdir(parents=True, exist_ok=True)
    budget = _Budget(limits, a.stat().st_size)
    kind = detect_kind(a)
    if kind in ("zip", "keras"):
        _extract_zip(a, root, budget)
    elif kind == "tar":
        _extract_tar(a, root, budget)
    else:
        raise UnpackError(
            f"{a.name} is not an archive.",
            "Upload a SavedModel folder as .zip or .tar.gz.",
        )


def _find_saved_models(root: Path) -> list[Path]:
    found = []
    for dirpath, _dirs, files in os.walk(root):
        if any(f in files for f in _SAVED_MODEL_FILES):
            found.append(Path(dirpath))
    return sorted(found)


def _single_model_in(root: Path) -> PreparedModel | None:
    """An archive may carry one .keras/.h5/.tflite file instead of a SavedModel."""
    files = [p for p in root.rglob("*") if p.is_file()]
    singles = [p for p in files if p.suffix.lower() in (".keras", ".h5", ".hdf5", ".tflite")]
    if len(singles) == 1 and len(files) == 1:
        kind = {".keras": ModelKind.KERAS, ".tflite": ModelKind.TFLITE}.get(
            singles[0].suffix.lower(), ModelKind.H5
        )
        return PreparedModel(kind, singles[0], singles[0].name, singles[0].stat().st_size)
    return None


def _saved_model_from(root: Path, name: str, size: int) -> PreparedModel:
    models = _find_saved_models(root)
    if not models:
        single = _single_model_in(root)
        if single is not None:
            return PreparedModel(single.kind, single.path, name, size)
        raise ModelFormatError(
            f"No saved_model.pb inside {name}.",
            "Archive the SavedModel folder itself (the one that holds saved_model.pb and "
            "variables/), e.g. `cd export && zip -r ../model.zip my_model`.",
        )
    if len(models) > 1:
        rel = ", ".join(str(m.relative_to(root) / "saved_model.pb") for m in models[:4])
        raise ModelFormatError(
            f"{name} holds {len(models)} models ({rel}).",
            "Upload one SavedModel per archive.",
        )
    return PreparedModel(ModelKind.SAVED_MODEL, models[0], name, size)


@contextlib.contextmanager
def prepare_model(
    source: str | os.PathLike[str],
    workdir: str | os.PathLike[str],
    limits: UnpackLimits | None = None,
    display_name: str | None = None,
) -> Iterator[PreparedModel]:
    """Yield the model ready to load; archives are unpacked into a fresh folder
    under ``workdir`` that is removed on exit, error or not."""
    src = Path(source)
    name = display_name or src.name
    kind = detect_kind(src)
    if kind == "saved_model_dir":
        if src.is_symlink():
            raise UnsafeArchiveError(f"{name} is a link.", "Give the real folder.")
        yield _saved_model_from(src, name, _dir_size(src))
        return
    if kind in ("keras", "h5", "tflite"):
        yield PreparedModel(ModelKind(kind), src, name, src.stat().st_size)
        return
    Path(workdir).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="unpack-", dir=workdir))
    try:
        safe_extract(src, tmp, limits or UnpackLimits())
        yield _saved_model_from(tmp, name, src.stat().st_size)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

"""The image source: listing it safely and reading only what is safe to read.

A local source is walked with ``os.scandir`` and ``lstat``, so what a name points at is known before anything
is opened: only regular files are read (a FIFO named ``x.png`` would block a reader forever, a device could
be endless or have side effects), and a symbolic link is followed only where the policy allows (by default
when it resolves inside the source root: a link must not smuggle in a file the source's owner never put
there). Everything refused still gets an outcome with its reason, and a folder that cannot be listed is
reported with its path instead of silently contributing nothing.

A cheap fingerprint (size, mtime, ctime, inode) decides whether a file must be read again: an edit that keeps
the size and restores the mtime still moves the ctime (only the kernel sets it), and a file replaced by
another (``mv new old``) has a new inode.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from labeling_assets.core import images as img
from labeling_assets.core.errors import ConfigurationError

# Reasons a listed file is refused without being opened (stored like the decode reasons of core.images).
NOT_A_REGULAR_FILE = "not_a_regular_file"
LINK_OUTSIDE_SOURCE = "link_outside_source"
LINK_NOT_FOLLOWED = "link_not_followed"
# Reasons a folder was not scanned.
UNREADABLE_FOLDER = "unreadable_folder"
LINK_INSIDE_SOURCE = "link_inside_source"

# Symbolic link policies: follow links that resolve inside the source root, none, or any.
FOLLOW_INSIDE = "inside"
FOLLOW_NEVER = "never"
FOLLOW_ALWAYS = "always"
FOLLOW_POLICIES = (FOLLOW_INSIDE, FOLLOW_NEVER, FOLLOW_ALWAYS)

_KINDS = (
    (stat.S_ISFIFO, "named pipe (FIFO)"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISDIR, "directory"),
)
_INT64 = 1 << 63
# Kernel pseudo filesystems: their "regular" files (/proc/self/environ, /sys/...) report 0 bytes and are made
# up on each read, some from secrets (a process environment). A link into one is refused like a device.
_PSEUDO_FILESYSTEMS = frozenset(
    ("proc", "sysfs", "devtmpfs", "devpts", "debugfs", "tracefs", "securityfs", "configfs", "efivarfs", "bpf",
     "pstore", "cgroup", "cgroup2", "mqueue", "hugetlbfs", "fusectl", "binfmt_misc", "autofs")
)  # fmt: skip


class SourceError(ConfigurationError):
    """The image source (or a file its settings name) cannot be used; the message names the absolute path."""


@dataclass(frozen=True)
class SourceFile:
    """One listed file: its path relative to the source root, where to read it, and its cheap fingerprint.

    ``refused`` is ``(reason, detail)`` for a file that must not be opened (not a regular file, a link the
    policy does not follow, a dangling link); its fingerprint is then empty.
    """

    rel_path: str
    full_path: str
    size: int | None
    mtime_ns: int | None
    ctime_ns: int | None = None
    inode: int | None = None
    refused: tuple[str, str] | None = None


@dataclass(frozen=True)
class FolderNotScanned:
    rel_path: str
    reason: str
    detail: str


@dataclass
class Listing:
    files: list[SourceFile] = field(default_factory=list)
    folders_not_scanned: list[FolderNotScanned] = field(default_factory=list)


def absolute_uri(uri: str) -> str:
    """A local path made absolute against this process's working folder now (``~`` expanded); a URI as is."""
    return uri if "://" in uri else os.path.abspath(os.path.expanduser(uri))


def open_source(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and root of a local folder (see :func:`absolute_uri`) or any fsspec URI (``s3://...``)."""
    fs, root = fsspec.core.url_to_fs(absolute_uri(uri))
    return fs, root.rstrip("/") or "/"


def source_key(fs: fsspec.AbstractFileSystem, root: str) -> str:
    """A stable name for a source in the manifest."""
    return str(fs.unstrip_protocol(root))


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


def check_source(fs: fsspec.AbstractFileSystem, root: str) -> None:
    """Raise :class:`SourceError` when the source root is missing or not a folder (never "0 files, success")."""
    where = source_key(fs, root) if not is_local(fs) else root
    if is_local(fs):
        if not os.path.lexists(root):
            raise SourceError(f"image source {where} does not exist")
        if not os.path.isdir(root):
            raise SourceError(f"image source {where} is not a folder")
    elif not fs.isdir(root):
        raise SourceError(f"image source {where} does not exist or is not a folder")


def list_source(fs: fsspec.AbstractFileSystem, root: str, *, follow_symlinks: str = FOLLOW_INSIDE) -> Listing:
    """Every file under ``root`` with an image extension, sorted by path, with its fingerprint or refusal."""
    if follow_symlinks not in FOLLOW_POLICIES:
        raise SourceError(f"follow_symlinks={follow_symlinks!r}: expected one of {', '.join(FOLLOW_POLICIES)}")
    check_source(fs, root)
    if is_local(fs):
        return _list_local(root, follow_symlinks)
    listing = Listing()
    for path, info in sorted(fs.find(root, detail=True).items()):
        if Path(path).suffix.lower() not in img.IMAGE_EXTENSIONS:
            continue
        mtime = info.get("mtime") or info.get("LastModified") or info.get("updated") or info.get("ETag")
        rel = path[len(root) :].lstrip("/")
        listing.files.append(SourceFile(rel, path, info.get("size"), _mtime_ns(mtime)))
    return listing


def _is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in img.IMAGE_EXTENSIONS


def _fingerprint(rel: str, path: str, st: os.stat_result) -> SourceFile:
    # Inodes are unsigned 64-bit; the manifest column is a signed BIGINT: store the two's complement.
    inode = st.st_ino - (1 << 64) if st.st_ino >= _INT64 else st.st_ino
    return SourceFile(rel, path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, inode)


def _kind(mode: int) -> str | None:
    return next((name for test, name in _KINDS if test(mode)), None if stat.S_ISREG(mode) else "special file")


def _pseudo_mounts() -> list[str]:
    """Mount points of the kernel's pseudo filesystems (wherever mounted, bind mounts too), deepest first."""
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:  # not Linux, or no /proc: the fixed places still count
        return ["/proc", "/sys", "/dev"]
    mounts = [fields[1] for fields in (line.split() for line in lines) if len(fields) > 2 and fields[2] in _PSEUDO_FILESYSTEMS]
    return sorted(mounts, key=len, reverse=True)


def _on_pseudo_filesystem(real_path: str) -> bool:
    return any(real_path == m or real_path.startswith(m.rstrip("/") + "/") for m in _pseudo_mounts())


def _refused(rel: str, path: str, reason: str, detail: str) -> SourceFile:
    return SourceFile(rel, path, None, None, refused=(reason, detail))


def _list_local(root: str, policy: str) -> Listing:
    listing = Listing()
    root_real = os.path.realpath(root)
    visited = {root_real}  # real folders already walked: a folder link cannot loop (policy "always")
    stack = [("", root)]
    while stack:
        rel_dir, folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            if not rel_dir:
                raise SourceError(f"image source {root} cannot be listed: {exc.strerror or exc}") from exc
            listing.folders_not_scanned.append(FolderNotScanned(rel_dir, UNREADABLE_FOLDER, _describe(exc)))
            continue
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                if entry.is_symlink():
                    _add_link(listing, stack, visited, rel, entry.path, root_real, policy)
                elif entry.is_dir(follow_symlinks=False):
                    stack.append((rel, entry.path))
                    if _is_image_name(entry.name):  # a folder named like an image: say so, then walk it
                        listing.files.append(_refused(rel, entry.path, NOT_A_REGULAR_FILE, "directory"))
                elif _is_image_name(entry.name):
                    st = entry.stat(follow_symlinks=False)
                    kind = _kind(st.st_mode)
                    listing.files.append(
                        _fingerprint(rel, entry.path, st) if kind is None else _refused(rel, entry.path, NOT_A_REGULAR_FILE, kind)
                    )
            except OSError as exc:  # vanished or unstatable between listing and stat
                if _is_image_name(entry.name):
                    listing.files.append(_refused(rel, entry.path, img.UNREADABLE, _describe(exc)))
    listing.files.sort(key=lambda f: f.rel_path)
    listing.folders_not_scanned.sort(key=lambda f: f.rel_path)
    return listing


def _add_link(
    listing: Listing, stack: list[tuple[str, str]], visited: set[str], rel: str, path: str, root_real: str, policy: str
) -> None:
    target = os.path.realpath(path)
    inside = target == root_real or target.startswith(root_real + os.sep)
    image = _is_image_name(os.path.basename(path))
    try:
        st = os.stat(target)
    except OSError as exc:
        if image:
            listing.files.append(_refused(rel, path, img.UNREADABLE, f"dangling link: {_describe(exc)}"))
        return
    if stat.S_ISDIR(st.st_mode) and not image:
        if policy == FOLLOW_ALWAYS and target not in visited:
            visited.add(target)
            stack.append((rel, target))
        elif policy == FOLLOW_ALWAYS:
            listing.folders_not_scanned.append(FolderNotScanned(rel, LINK_INSIDE_SOURCE, f"link loop to {target}"))
        else:
            reason = LINK_NOT_FOLLOWED if policy == FOLLOW_NEVER else LINK_INSIDE_SOURCE if inside else LINK_OUTSIDE_SOURCE
            listing.folders_not_scanned.append(FolderNotScanned(rel, reason, f"folder link to {target}"))
        return
    if not image:
        return
    if policy == FOLLOW_NEVER:
        listing.files.append(_refused(rel, path, LINK_NOT_FOLLOWED, f"symbolic link to {target} (follow_symlinks=never)"))
    elif policy == FOLLOW_INSIDE and not inside:
        listing.files.append(_refused(rel, path, LINK_OUTSIDE_SOURCE, f"symbolic link to {target}, outside the source"))
    elif (kind := _kind(st.st_mode)) is not None:
        listing.files.append(_refused(rel, path, NOT_A_REGULAR_FILE, f"symbolic link to a {kind}"))
    elif _on_pseudo_filesystem(target):
        listing.files.append(_refused(rel, path, NOT_A_REGULAR_FILE, f"symbolic link to {target}, a kernel pseudo file"))
    else:
        # Read the resolved target (opened without following links): the link is not re-resolved later.
        listing.files.append(_fingerprint(rel, target, st))


def read_file(fs: fsspec.AbstractFileSystem, f: SourceFile) -> tuple[bytes, SourceFile]:
    """The bytes of ``f`` and its fingerprint taken on the open file (before reading).

    Locally the file is opened non-blocking and without following a link, then checked to be a regular
    file before a byte is read: a name swapped for a FIFO or a link since the listing is refused, not read.
    Raises ``OSError`` when it cannot be read (``NotARegularFile`` for a swapped name).
    """
    if not is_local(fs):
        return fs.cat_file(f.full_path), f
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(f.full_path, flags)
    try:
        st = os.fstat(fd)
        if (kind := _kind(st.st_mode)) is not None:
            raise NotARegularFile(kind)
        os.set_blocking(fd, True)
        chunks = []
        while chunk := os.read(fd, max(st.st_size, 1 << 16)):
            chunks.append(chunk)
        return b"".join(chunks), _fingerprint(f.rel_path, f.full_path, st)
    finally:
        os.close(fd)


class NotARegularFile(OSError):
    """The name now points at something other than a regular file (swapped since the listing)."""


def _describe(exc: OSError) -> str:
    return f"{type(exc).__name__}: {exc.strerror or exc}" if exc.strerror else f"{type(exc).__name__}: {exc}"


def _mtime_ns(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return int(value * 1_000_000_000)
    if hasattr(value, "timestamp"):
        return int(value.timestamp() * 1_000_000_000)
    # An ETag or other opaque version string: any stable integer works as a fingerprint.
    return int(img.sha256_hex(str(value).encode())[:15], 16)

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

import hashlib
import os
import stat
from collections.abc import Iterable
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
FILE_NAME_NOT_UTF8 = "file_name_not_utf8"
FILE_TOO_LARGE = "file_too_large"
# A file whose size, mtime or ctime moved while it was read (a writer at work): nothing is stored, and the
# next scan reads it again.
CHANGED_WHILE_READ = "changed_while_read"

# Larger files are refused from their size alone (never read, never copied); see IngestOptions.max_file_bytes.
DEFAULT_MAX_FILE_BYTES = 256 * 1024 * 1024
_CHUNK = 1 << 20  # read in 1 MiB pieces: no single allocation the size of the file
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


def list_source(
    fs: fsspec.AbstractFileSystem,
    root: str,
    *,
    follow_symlinks: str = FOLLOW_INSIDE,
    extensions: frozenset[str] = img.IMAGE_EXTENSIONS,
) -> Listing:
    """Every file under ``root`` with one of ``extensions`` (images by default; a text project lists its text
    files), sorted by path, with its fingerprint or refusal."""
    if follow_symlinks not in FOLLOW_POLICIES:
        raise SourceError(f"follow_symlinks={follow_symlinks!r}: expected one of {', '.join(FOLLOW_POLICIES)}")
    check_source(fs, root)
    if is_local(fs):
        return _list_local(root, follow_symlinks, extensions)
    listing = Listing()
    for path, info in sorted(fs.find(root, detail=True).items()):
        if Path(path).suffix.lower() not in extensions:
            continue
        mtime = info.get("mtime") or info.get("LastModified") or info.get("updated") or info.get("ETag")
        rel = path[len(root) :].lstrip("/")
        listing.files.append(SourceFile(rel, path, info.get("size"), _mtime_ns(mtime)))
    return listing


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # os.scandir decoded undecodable bytes as lone surrogates
        return False
    return True


def escape_name(name: str) -> str:
    """A file name as valid text: bytes that are not UTF-8 shown as ``\\xNN`` (the name itself unchanged
    when it is valid)."""
    return name if _is_utf8(name) else os.fsencode(name).decode("utf-8", "backslashreplace")


def _is_listed(name: str, extensions: frozenset[str]) -> bool:
    return os.path.splitext(name)[1].lower() in extensions


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


def _list_local(root: str, policy: str, extensions: frozenset[str]) -> Listing:
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
            listing.folders_not_scanned.append(
                FolderNotScanned(escape_name(rel_dir), UNREADABLE_FOLDER, _describe(exc))
            )
            continue
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if not _is_utf8(rel):
                # The store, the metadata and Label Studio all hold text: such a name cannot be recorded as it
                # is. Refuse the file (shown with its bytes escaped) and walk a folder so named the same way.
                if entry.is_dir(follow_symlinks=False) and not entry.is_symlink():
                    stack.append((rel, entry.path))
                elif _is_listed(entry.name, extensions):
                    detail = f"file name is not valid UTF-8: {os.fsencode(rel)!r}; rename it to ingest it"
                    listing.files.append(_refused(escape_name(rel), entry.path, FILE_NAME_NOT_UTF8, detail))
                continue
            try:
                if entry.is_symlink():
                    _add_link(listing, stack, visited, rel, entry.path, root_real, policy, extensions)
                elif entry.is_dir(follow_symlinks=False):
                    stack.append((rel, entry.path))
                    if _is_listed(entry.name, extensions):  # a folder named like an image: say so, then walk it
                        listing.files.append(_refused(rel, entry.path, NOT_A_REGULAR_FILE, "directory"))
                elif _is_listed(entry.name, extensions):
                    st = entry.stat(follow_symlinks=False)
                    kind = _kind(st.st_mode)
                    listing.files.append(
                        _fingerprint(rel, entry.path, st) if kind is None else _refused(rel, entry.path, NOT_A_REGULAR_FILE, kind)
                    )
            except OSError as exc:  # vanished or unstatable between listing and stat
                if _is_listed(entry.name, extensions):
                    listing.files.append(_refused(rel, entry.path, img.UNREADABLE, _describe(exc)))
    listing.files.sort(key=lambda f: f.rel_path)
    listing.folders_not_scanned.sort(key=lambda f: f.rel_path)
    return listing


def _add_link(
    listing: Listing, stack: list[tuple[str, str]], visited: set[str], rel: str, path: str, root_real: str, policy: str,
    extensions: frozenset[str],
) -> None:
    target = os.path.realpath(path)
    inside = target == root_real or target.startswith(root_real + os.sep)
    image = _is_listed(os.path.basename(path), extensions)
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


def read_file(
    fs: fsspec.AbstractFileSystem, f: SourceFile, *, max_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> tuple[bytes, SourceFile, str]:
    """The bytes of ``f``, its fingerprint taken on the open file (before reading) and their SHA-256.

    Locally the file is opened non-blocking and without following a link, then checked to be a regular
    file before a byte is read: a name swapped for a FIFO or a link since the listing is refused, not read.
    At most ``max_bytes`` are read, in 1 MiB pieces hashed as they come; the open file is checked again after
    the last read, so a file rewritten or grown meanwhile is refused, not stored half-written.
    Raises ``OSError``: ``NotARegularFile`` for a swapped name, ``FileTooLarge`` past ``max_bytes``,
    ``ChangedWhileRead`` when the size, mtime or ctime moved while it was read.
    """
    if not is_local(fs):
        if f.size is not None and f.size > max_bytes:
            raise FileTooLarge(too_large_detail(f.size, max_bytes))
        data = fs.cat_file(f.full_path)
        if len(data) > max_bytes:
            raise FileTooLarge(too_large_detail(len(data), max_bytes))
        return data, f, img.sha256_hex(data)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(f.full_path, flags)
    try:
        before = os.fstat(fd)
        if (kind := _kind(before.st_mode)) is not None:
            raise NotARegularFile(kind)
        if before.st_size > max_bytes:
            raise FileTooLarge(too_large_detail(before.st_size, max_bytes))
        os.set_blocking(fd, True)
        digest, data = hashlib.sha256(), bytearray()
        while chunk := os.read(fd, min(_CHUNK, max_bytes + 1 - len(data))):
            digest.update(chunk)
            data += chunk
            if len(data) > max_bytes:
                raise ChangedWhileRead(f"grew past the limit of {max_bytes} bytes while it was read")
        after = os.fstat(fd)
        moved = _moved(before, after, len(data))
        if moved:
            raise ChangedWhileRead(moved)
        return bytes(data), _fingerprint(f.rel_path, f.full_path, before), digest.hexdigest()
    finally:
        os.close(fd)


# One file of a batch: (its fingerprint when opened, bytes, SHA-256) or (the listed file, None, None, why not).
ReadResult = tuple[SourceFile, bytes | None, str | None, tuple[str, str] | None]


def read_batch(fs: fsspec.AbstractFileSystem, batch: Iterable[SourceFile], limit: int) -> list[ReadResult]:
    """Each file's bytes and hash (with the fingerprint taken when it was opened), or why it was not read."""
    read: list[ReadResult] = []
    for f in batch:
        if f.refused is not None:
            read.append((f, None, None, f.refused))
            continue
        if f.size is not None and f.size > limit:  # from the listing's stat: not even opened
            read.append((f, None, None, (FILE_TOO_LARGE, too_large_detail(f.size, limit))))
            continue
        try:
            if f.size is None:
                raise OSError("cannot stat file (dangling link or vanished)")
            data, opened, digest = read_file(fs, f, max_bytes=limit)
        except NotARegularFile as exc:
            read.append((f, None, None, (NOT_A_REGULAR_FILE, f"now a {exc}")))
        except FileTooLarge as exc:
            read.append((f, None, None, (FILE_TOO_LARGE, str(exc))))
        except ChangedWhileRead as exc:
            read.append((f, None, None, (CHANGED_WHILE_READ, f"{exc}; read again on the next scan")))
        except OSError as exc:
            read.append((f, None, None, (img.UNREADABLE, f"{type(exc).__name__}: {exc}")))
        else:
            read.append((opened, data, digest, None))
    return read


def changed_since(fs: fsspec.AbstractFileSystem, f: SourceFile) -> str | None:
    """Why the file ``f`` (fingerprinted when it was read) is no longer what was read, or None: checked after
    its bytes were decoded, so a writer still at work (a file that fails to decode only this once) is seen."""
    if not is_local(fs) or f.size is None:
        return None
    try:
        now = _fingerprint(f.rel_path, f.full_path, os.stat(f.full_path, follow_symlinks=False))
    except OSError as exc:
        return f"vanished or replaced while it was read ({_describe(exc)})"
    if (now.size, now.mtime_ns, now.ctime_ns, now.inode) == (f.size, f.mtime_ns, f.ctime_ns, f.inode):
        return None
    return f"changed while it was read (size {f.size} -> {now.size}, mtime {f.mtime_ns} -> {now.mtime_ns})"


def _moved(before: os.stat_result, after: os.stat_result, n_read: int) -> str | None:
    if (before.st_size, before.st_mtime_ns, before.st_ctime_ns) != (
        after.st_size,
        after.st_mtime_ns,
        after.st_ctime_ns,
    ):
        return (
            f"changed while it was read (size {before.st_size} -> {after.st_size}, "
            f"mtime {before.st_mtime_ns} -> {after.st_mtime_ns})"
        )
    if n_read != before.st_size:
        return f"read {n_read} bytes of a file of {before.st_size}"
    return None


def too_large_detail(size: int, limit: int) -> str:
    return f"{size} bytes > limit {limit} (max_file_bytes): not read and not copied, the file stays only in the source"


class FileTooLarge(OSError):
    """The file is larger than the ingest's ``max_file_bytes``."""


class ChangedWhileRead(OSError):
    """The file changed while it was read (a writer at work): read it again on the next scan."""


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

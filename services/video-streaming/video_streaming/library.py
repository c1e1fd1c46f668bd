"""The videos on disk: listing them and resolving a requested name without leaving VIDEOS_DIR."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from werkzeug.security import safe_join

from flixtube_common.views import MAX_VIDEO_PATH, has_unsafe_characters

MAX_NAME_PART_BYTES = 255  # the longest file or folder name Linux file systems take (NAME_MAX)


class UnsafeName(ValueError):
    """A requested name that no video can have (the message says why), or that leaves the videos folder."""


def check_name(name: str) -> None:
    """Refuse, before any file-system call sees it, a name that could only fail there or escape.

    A NUL makes os.stat raise ValueError and an over-long part ENAMETOOLONG: both would be a 500.
    A name is also a view's videoPath, so it has the same limits.
    """
    if not name:
        raise UnsafeName("path must not be empty")
    if len(name) > MAX_VIDEO_PATH:
        raise UnsafeName(f"path must be at most {MAX_VIDEO_PATH} characters, got {len(name)}")
    if has_unsafe_characters(name):
        raise UnsafeName("path must not contain control characters")
    if any(len(part.encode()) > MAX_NAME_PART_BYTES for part in name.split("/")):
        raise UnsafeName(f"each part of path must be at most {MAX_NAME_PART_BYTES} bytes")
    if "\\" in name:
        raise UnsafeName("path must use forward slashes")


@dataclass(frozen=True)
class Video:
    path: str  # relative to the videos folder, with forward slashes
    file: Path
    size: int


class Library:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def find(self, name: str) -> Video | None:
        """The video called `name`; None if there is none. Raises UnsafeName for a name no video can have,
        or one that leaves the folder (`..`, absolute)."""
        check_name(name)
        joined = safe_join(str(self.root), name)
        if joined is None:
            raise UnsafeName("path must be a relative name inside the videos folder")
        return self._video(Path(joined))

    def first(self) -> Video | None:
        videos = self.videos()
        return videos[0] if videos else None

    def videos(self) -> list[Video]:
        """Every video below the folder, by name (hidden files and escaping symlinks left out)."""
        found = []
        for folder, subfolders, files in os.walk(self.root):
            subfolders[:] = [name for name in subfolders if not name.startswith(".")]
            found.extend(self._video(Path(folder, name)) for name in files if not name.startswith("."))
        return sorted((video for video in found if video is not None), key=lambda video: video.path)

    def _video(self, candidate: Path) -> Video | None:
        # A symlink may point anywhere: judge where it really leads.
        real = candidate.resolve()
        if not real.is_relative_to(self.root) or not real.is_file():
            return None
        return Video(path=candidate.relative_to(self.root).as_posix(), file=real, size=real.stat().st_size)

"""The videos on disk: listing them and resolving a requested name without leaving VIDEOS_DIR."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from werkzeug.security import safe_join


class UnsafeName(ValueError):
    """A requested name that tries to leave the videos folder."""


@dataclass(frozen=True)
class Video:
    path: str  # relative to the videos folder, with forward slashes
    file: Path  # the real file, symlinks resolved
    size: int
    real_path: str  # `file` relative to the videos folder: what the front opens, following no symlink


class Library:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def find(self, name: str) -> Video | None:
        """The video called `name`; None if there is none. Raises UnsafeName for `..` or absolute names."""
        joined = safe_join(str(self.root), name) if name and "\\" not in name else None
        if joined is None:
            raise UnsafeName(name)
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
        return Video(
            path=candidate.relative_to(self.root).as_posix(),
            file=real,
            size=real.stat().st_size,
            real_path=real.relative_to(self.root).as_posix(),
        )

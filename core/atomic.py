"""Writes that land whole or not at all: a file or a folder is built under a temporary name
beside its destination and renamed into place, so a crash, a kill or a full disk never
leaves half of it where a reader (or the user's stored data) would find it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def atomic_write(path: Path, write: Callable[[str], object]) -> None:
    """Call write(temp_path) next to `path`, then rename over it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; what we publish is not (as staged_folder's 0o755)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def staged_folder(out: Path, replace: bool = False, exists_message: str | None = None) -> Iterator[Path]:
    """Yield a hidden folder beside `out`; when the block succeeds it becomes `out`, on any
    failure it is removed. An existing non-empty `out` is refused (FileExistsError, with
    `exists_message` if given) unless `replace`, which swaps the old folder out only after
    the new one is complete."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial"))
    os.chmod(stage, 0o755)  # mkdtemp makes it private; what we publish is not
    try:
        yield stage
        # checked again here: something may have appeared at `out` while we worked
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            if not replace:
                raise FileExistsError(
                    exists_message or f"{out} already exists and is not empty; it is never overwritten"
                )
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(stage, out)
            shutil.rmtree(old)
            return
        if out.exists():
            out.rmdir()
        os.replace(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)  # already gone after a successful rename

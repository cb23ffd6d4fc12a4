"""The Fine-tune tab's actions: check an upload, queue a LoRA fine-tune of it, report its queue
position, progress and live loss curve, and push the result to the registry; plain functions,
tested without a browser.

Uploads are validated by `finetune.ingest` (every failure is a message naming the problem)
before anything is queued, on a checking thread of their own: a request only checks the options
and returns, so a slow upload never holds the server's request threads. One fine-tune runs at a
time, on one worker thread: two would share the CPU and each take twice as long. The others wait
in order and see how many are ahead. Jobs live on the server by id; a browser tab keeps only its
job's id in a gr.State.

Any failure, expected or not, is a message on the page and removes the job's folder, so nothing
half-made is left. A finished job keeps only its config and summary: the model and data a
fine-tune loaded are collected and the freed memory handed back to the system (a fine-tune
otherwise left the app gigabytes larger for good).
"""

from __future__ import annotations

import ctypes
import gc
import math
import shutil
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core import zoo
from finetune.review import percent
from finetune.train import CURVE_FILE, FinetuneConfig, finetune

LIVE_CURVE = "live_curve.png"


@dataclass
class FinetuneTabConfig:
    work_dir: Path | None = None  # where uploads are ingested and runs kept (None: a temporary folder)
    max_steps: int = 2000  # the most steps one visitor may ask for
    max_rank: int = 64  # the largest LoRA rank offered
    batch_size: int = 4  # clips per step
    clip_len: int = 16  # frames per clip
    threads: int = 0  # torch threads of a fine-tune (0: torch's default)
    idm_dir: Path | None = None  # IDM folders (`pocketworld idm train --out DIR/NAME`) offered to propose the keys
    # of play uploaded without a log; the keys they propose are shown for review before anything trains


@dataclass
class Job:
    id: str
    folder: Path  # shards/, adapter/ and adapter.run/ of this fine-tune
    config: FinetuneConfig
    state: str = "checking"  # checking, refused (the upload), review (keys an IDM proposed), queued, running, done,
    # failed or discarded (a review the visitor turned down)
    message: str = ""  # why it was refused or failed; what the check found
    result: dict = field(default_factory=dict)
    review: dict = field(default_factory=dict)  # keys an IDM proposed: their files, counts and the IDM's name


class FinetuneQueue:
    """Fine-tunes of every visitor, run one at a time in the order they were submitted."""

    def __init__(
        self, config: FinetuneTabConfig | None = None, registry=None, run: Callable[[FinetuneConfig], dict] = finetune
    ):
        self.config = config or FinetuneTabConfig()
        self.registry = registry
        self.work_dir = Path(self.config.work_dir or tempfile.mkdtemp(prefix="pocketworld-finetunes-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._run = run
        self._jobs: dict[str, Job] = {}
        self._waiting: deque[str] = deque()
        self._ready = threading.Condition()
        # (job, upload, action log, game, IDM folder) to check
        self._uploads: deque[tuple[Job, str, str | None, str, Path | None]] = deque()
        self._uploaded = threading.Condition()
        threading.Thread(target=self._work, name="finetune-queue", daemon=True).start()
        threading.Thread(target=self._check_uploads, name="finetune-uploads", daemon=True).start()

    def idms(self) -> list[str]:
        """The IDMs this app offers to propose keys: the folders of config.idm_dir that hold one."""
        root = self.config.idm_dir
        if root is None or not Path(root).is_dir():
            return []
        return sorted(p.name for p in Path(root).iterdir() if (p / "idm.json").is_file())

    def submit(
        self, base: str, upload: str | None, actions: str | None, game: str, rank, steps, labeller: str | None = None
    ) -> tuple[str | None, str]:
        """Check the options and hand the upload to the checking thread; (job id or None, a message for the page).
        The job's status says what the check found, then its place in the queue. `labeller`: the name of one of
        idms() to propose the keys of play without a log (its keys then wait for the visitor's review)."""
        problem = self._check_options(base, upload, rank, steps) or self._check_labeller(labeller, actions)
        if problem:
            return None, f"Not started: {problem}"
        job_id = uuid.uuid4().hex[:12]
        folder = self.work_dir / job_id
        config = FinetuneConfig(
            base=base,
            data=str(folder / "shards"),
            out=str(folder / "adapter"),
            steps=int(steps),
            batch_size=self.config.batch_size,
            clip_len=self.config.clip_len,
            threads=self.config.threads,
            progress=False,
        )
        config.lora.rank = int(rank)
        job = Job(job_id, folder, config)
        with self._uploaded:
            self._jobs[job_id] = job
            idm = Path(self.config.idm_dir) / labeller if labeller else None
            self._uploads.append((job, upload, actions or None, (game or "").strip(), idm))
            self._uploaded.notify()
        return job_id, "Checking your upload; its status appears on the right."

    def _check_uploads(self) -> None:
        from finetune.ingest import IngestConfig, ingest

        while True:
            with self._uploaded:
                while not self._uploads:
                    self._uploaded.wait()
                job, upload, actions, game, idm = self._uploads.popleft()
            config = IngestConfig(game=game or None, idm=str(idm) if idm else None)
            try:
                report = ingest(upload, job.folder / "shards", actions, config, progress=False)
            except Exception as err:  # every failure is a message, and leaves no folder behind
                shutil.rmtree(job.folder, ignore_errors=True)
                job.message, job.state = _failure(err), "refused"
                continue
            finally:
                _release_memory()
            job.message = f"Checked: {report['frames']} frames ({report['seconds']} s) of {', '.join(report['games'])}."
            if "review" in report:  # keys an IDM proposed: the visitor looks at them before anything trains
                job.review = {**report["review"], "action_counts": report["action_counts"], "idm": idm.name}
                job.state = "review"
                continue
            self._queue(job)

    def _queue(self, job: Job) -> None:
        with self._ready:
            job.state = "queued"
            self._waiting.append(job.id)
            self._ready.notify()

    def approve(self, job_id: str | None) -> str:
        """The visitor accepts the keys an IDM proposed: their fine-tune joins the queue. A message for the page."""
        job = self._jobs.get(job_id or "")
        with self._ready:  # a double click queues it once
            if job is None or job.state != "review":
                return "Nothing to accept: this applies to keys an IDM proposed, once they are shown."
            self._queue(job)
        return "Keys accepted: your fine-tune is queued."

    def discard(self, job_id: str | None) -> str:
        """The visitor turns the proposed keys down: the ingested play is deleted. A message for the page."""
        job = self._jobs.get(job_id or "")
        with self._ready:
            if job is None or job.state != "review":
                return "Nothing to discard: this applies to keys an IDM proposed, once they are shown."
            job.state = "discarded"
        shutil.rmtree(job.folder, ignore_errors=True)
        return (
            "Discarded. To correct the keys instead, download the proposed keys, edit them, and upload them "
            "as the action log with the same recording."
        )

    def state_of(self, job_id: str | None) -> str | None:
        job = self._jobs.get(job_id or "")
        return None if job is None else job.state

    def review_files(self, job_id: str | None) -> tuple[str | None, str | None]:
        """(the picture of the proposed keys, their log) of a job whose keys an IDM proposed, while its folder
        lasts (a failed or discarded job's is deleted); (None, None) otherwise."""
        job = self._jobs.get(job_id or "")
        if job is None or not job.review:
            return None, None
        picture, keys = (job.folder / "shards" / job.review[name] for name in ("picture", "keys"))
        return (str(picture), str(keys)) if picture.is_file() and keys.is_file() else (None, None)

    def status(self, job_id: str | None) -> tuple[str, str | None]:
        """(Markdown: queue position, progress or result; the loss curve so far, or None)."""
        job = self._jobs.get(job_id or "")
        if job is None:
            return "Upload gameplay and press Fine-tune.", None
        if job.state == "checking":
            return "Checking your upload (frames, action log and limits).", None
        if job.state == "refused":
            return f"Not started: {job.message}", None
        if job.state == "discarded":
            return "Discarded: the proposed keys were turned down and the upload deleted.", None
        if job.state == "review":
            counts = job.review["action_counts"]
            total = sum(counts.values())
            ranked = sorted(counts.items(), key=lambda kv: -kv[1])
            shares = ", ".join(f"{key} {percent(n / total)}" for key, n in ranked)
            return (
                f"{job.message} No key log: the IDM {job.review['idm']} proposed the keys ({shares}). Check them in "
                "the picture (when each key was read, and a few frames with the key read between them); press "
                "Accept keys to fine-tune on them, or Discard. To correct them, download the proposed keys, edit "
                "them and upload them as the action log with the same recording.",
                None,
            )
        if job.state == "queued":
            with self._ready:
                ahead = list(self._waiting).index(job.id) + sum(j.state == "running" for j in self._jobs.values())
            return f"{job.message} Waiting: {ahead} fine-tune(s) ahead of yours (one runs at a time).", None
        if job.state == "failed":
            return f"Failed: {job.message}", self._curve(job)
        if job.state == "running":
            lines = self._metrics(job)
            train = [line for line in lines if line["split"] == "train"]
            if not train:
                return f"Running: preparing (reading the gameplay, loading {job.config.base}).", None
            return (
                f"Running: step {train[-1]['step']} of {job.config.steps}, loss {train[-1]['loss']:.4f}.",
                self._curve(job),
            )
        scores = job.result.get("held_out", {})
        summary = "; ".join(
            f"{name.replace('_', ' ')} {v['base']:.4f} -> {v['finetuned']:.4f}"
            for name, v in scores.items()
            if name in ("loss", "accuracy", "dynamics_mse", "action_gap_relative")
        )
        return (
            f"Done in {job.result.get('seconds', '?')} s. Held-out clips, base -> fine-tune: "
            f"{summary or 'no held-out clips'}. Push it to play it and share it.",
            str(Path(job.config.out) / CURVE_FILE),
        )

    def push(self, job_id: str | None, repo: str) -> str:
        """Push a finished fine-tune under `repo`; a message for the page."""
        from finetune.registry import RegistryError

        job = self._jobs.get(job_id or "")
        if job is None or job.state != "done":
            return "Nothing to push yet: wait until your fine-tune is done."
        if self.registry is None:
            return "This app has no registry to push to."
        if not repo.strip():
            return "Name the repo first (owner/name, or name for your own namespace)."
        try:
            where = self.registry.push(job.config.out, repo.strip())
        except (RegistryError, ValueError, FileNotFoundError) as err:
            return f"Not pushed: {err}"
        return f"Pushed to {where}: pick it in the Community or Play tab."

    def _check_labeller(self, labeller: str | None, actions: str | None) -> str:
        if not labeller:
            return ""
        offered = self.idms()
        if labeller not in offered:
            return f"no IDM called {labeller!r} here; this app offers {', '.join(offered) or 'none'}"
        if actions:
            return "upload an action log or pick an IDM to propose the keys, not both"
        return ""

    def _check_options(self, base: str, upload: str | None, rank, steps) -> str:
        if not upload:
            return "upload a video, a .zip of PNG frames or shards first"
        if not base:
            return "pick a base model"
        try:
            zoo.model_dir(base, role="base model")
        except (ValueError, FileNotFoundError) as err:  # unknown, or a variant whose weights are not here
            return str(err)
        for name, value, most in (("rank", rank, self.config.max_rank), ("steps", steps, self.config.max_steps)):
            whole = (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
                and int(value) == value
            )  # an API call may send NaN, infinity or text where the slider sends numbers
            if not whole or not 1 <= int(value) <= most:
                return f"{name} must be a whole number from 1 to {most}, got {value!r}"
        return ""

    def _metrics(self, job: Job) -> list[dict]:
        from core.train.metrics import METRICS_FILE, read_metrics

        path = Path(job.config.run_dir) / METRICS_FILE
        return read_metrics(path) if path.is_file() else []

    def _curve(self, job: Job) -> str | None:
        from core.train.metrics import plot_run

        if not self._metrics(job):
            return None
        plot_run(job.config.run_dir, job.folder / LIVE_CURVE)
        return str(job.folder / LIVE_CURVE)

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._waiting:
                    self._ready.wait()
                job = self._jobs[self._waiting.popleft()]
                job.state = "running"
            try:
                result, failure = self._run(job.config), None
            except Exception as err:  # one visitor's failed fine-tune must not stop the queue for the others
                shutil.rmtree(job.folder, ignore_errors=True)
                result, failure = {}, _failure(err)
            _release_memory()  # before the page hears the job ended, so the next one starts from a clean heap
            if failure is None:
                job.result, job.state = result, "done"
            else:
                job.message, job.state = failure, "failed"


def _failure(err: Exception) -> str:
    """A page's message for any exception: ours say what was wrong; others are named, not a stack trace."""
    if isinstance(err, (ValueError, FileNotFoundError, FileExistsError)):
        return str(err)
    return f"an unexpected {type(err).__name__} ({err}); the job was removed. Check the upload and try again"


def _release_memory() -> None:
    """Collect what a job loaded (models hold reference cycles) and return freed heap to the system:
    glibc keeps freed memory for reuse, so without malloc_trim the app's size stays at its peak."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): collecting is all there is
        pass

"""The Fine-tune and Community tabs' actions, without a browser: uploads checked before anything is
queued, one fine-tune at a time with the others told their place, progress and loss curve, push, and
browsing, filtering and opening what was shared."""

import threading

import pytest

from core.play.community import ANY, browse, show
from core.play.finetune_tab import FinetuneQueue, FinetuneTabConfig
from finetune.registry import LocalRegistry
from tests.train_fixtures import save_tiny_model, write_gameplay_shards


@pytest.fixture
def upload(tmp_path):
    save_tiny_model(tmp_path / "base")
    return tmp_path / "base", write_gameplay_shards(tmp_path / "play", samples=1, frames=40)


def wait_for(queue, job, state):
    for _ in range(3000):
        if queue._jobs[job].state == state:
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"job {job} never reached {state}: {queue._jobs[job].state}")


def test_one_fine_tune_at_a_time_and_the_others_see_their_place(tmp_path, upload):
    base, play = upload
    release, started = threading.Event(), []

    def run(config):  # stands in for finetune(): blocks until the test lets it finish
        started.append(config)
        release.wait(30)
        return {"held_out": {}, "seconds": 1}

    queue = FinetuneQueue(FinetuneTabConfig(work_dir=tmp_path / "jobs"), run=run)
    first, note = queue.submit(str(base), str(play), None, "my game", 4, 10)
    assert first and note.startswith("Checking your upload")  # checked off the request thread
    second, _ = queue.submit(str(base), str(play), None, "", 2, 10)
    wait_for(queue, first, "running")
    assert queue.status(first)[0].startswith("Running: preparing")
    wait_for(queue, second, "queued")
    assert queue.status(second)[0] == (
        "Checked: 40 frames (1.33 s) of synthetic. Waiting: 1 fine-tune(s) ahead of yours (one runs at a time)."
    )
    release.set()
    wait_for(queue, second, "done")
    assert [c.lora.rank for c in started] == [4, 2] and queue.status(first)[0].startswith("Done")
    assert queue.push(first, "me/game") == "This app has no registry to push to."


def test_bad_uploads_and_options_are_refused_before_queueing(tmp_path, upload):
    base, play = upload
    queue = FinetuneQueue(FinetuneTabConfig(work_dir=tmp_path / "jobs"), run=lambda config: {})
    (tmp_path / "clip.mp4").write_bytes(b"not a video")
    job, _ = queue.submit(str(base), str(tmp_path / "clip.mp4"), None, "", 4, 10)
    wait_for(queue, job, "refused")
    note = queue.status(job)[0]
    assert note.startswith("Not started:") and "clip.mp4" in note
    assert not any((tmp_path / "jobs").iterdir())  # nothing half-written is kept
    assert "rank must be a whole number from 1 to 64" in queue.submit(str(base), str(play), None, "", 0, 10)[1]
    assert "steps must be a whole number from 1 to 2000" in queue.submit(str(base), str(play), None, "", 4, 1e6)[1]
    assert "unknown base model 'giant'" in queue.submit("giant", str(play), None, "", 4, 10)[1]
    assert "upload a video" in queue.submit(str(base), None, None, "", 4, 10)[1]
    assert queue.status(None)[0] == "Upload gameplay and press Fine-tune."


def test_fine_tune_push_browse_filter_and_open(tmp_path, upload):
    base, play = upload
    registry = LocalRegistry(tmp_path / "registry")
    queue = FinetuneQueue(
        FinetuneTabConfig(work_dir=tmp_path / "jobs", clip_len=4, batch_size=1, threads=1), registry=registry
    )
    job, _ = queue.submit(str(base), str(play), None, "Sprite Land", 2, 2)
    wait_for(queue, job, "done")
    text, curve = queue.status(job)
    assert text.startswith("Done in") and curve.endswith("loss_curve.png")  # (these shards hold no "val" clips)
    assert queue.push(job, "me/sprite-land").startswith("Pushed to")
    assert queue.push(job, "me/sprite-land").startswith("Not pushed: me/sprite-land already exists")

    rows, games, bases, note = browse(registry)
    assert rows == [["me/sprite-land", "Sprite Land", str(base)]] and games == [ANY, "Sprite Land"]
    assert bases == [ANY, str(base)] and note == "1 of 1 shared fine-tune(s)"
    assert browse(registry, game="Other game")[0] == []
    assert browse(registry, search="nothing-like-it")[0] == []
    card, preview, value = show(registry, "me/sprite-land")
    assert "LoRA fine-tune" in card and preview.endswith("loss_curve.png") and value == "registry:me/sprite-land"
    assert show(registry, "me/missing")[0].startswith("Cannot open me/missing")


def test_play_without_a_key_log_is_labelled_by_an_idm_and_reviewed_before_training(tmp_path, upload):
    """No action log: the visitor picks one of the app's IDMs; its proposed keys are shown (a picture and a log to
    correct) and nothing trains until the visitor accepts them; discarding deletes the upload's shards."""
    from core.evaluation.idm import save_idm
    from tests.test_evaluation_models import _toy_shards, toy_idm
    from tests.test_finetune_ingest import png_bytes, samples

    base, logged = upload
    idm, info = toy_idm(tmp_path / "labelled")
    save_idm(idm, tmp_path / "idms" / "toy", info)
    _toy_shards(tmp_path / "play", [(5, "train")])
    (tmp_path / "frames").mkdir()
    for index, image in enumerate(samples(tmp_path / "play")[0].frames):
        (tmp_path / "frames" / f"{index:04d}.png").write_bytes(png_bytes(image))
    started = []
    queue = FinetuneQueue(
        FinetuneTabConfig(work_dir=tmp_path / "jobs", idm_dir=tmp_path / "idms"),
        run=lambda config: started.append(config) or {"held_out": {}, "seconds": 1},
    )
    assert queue.idms() == ["toy"]
    frames = str(tmp_path / "frames")
    unknown = queue.submit(str(base), frames, None, "", 4, 10, "other")[1]
    assert unknown == "Not started: no IDM called 'other' here; this app offers toy"
    both = queue.submit(str(base), str(logged), str(tmp_path / "keys.csv"), "", 4, 10, "toy")[1]
    assert "not both" in both

    job, _ = queue.submit(str(base), frames, None, "toy", 4, 10, "toy")
    wait_for(queue, job, "review")
    text, _ = queue.status(job)
    assert "the IDM toy proposed the keys" in text and "Accept keys" in text
    picture, keys = queue.review_files(job)
    assert picture.endswith("proposed_keys.png") and keys.endswith("proposed_keys.json")
    threading.Event().wait(0.3)
    assert not started  # nothing trains on keys no one has looked at
    assert queue.approve(job) == "Keys accepted: your fine-tune is queued."
    assert queue.approve(job).startswith("Nothing to accept")  # a second click queues nothing more
    wait_for(queue, job, "done")
    assert len(started) == 1

    turned_down, _ = queue.submit(str(base), frames, None, "toy", 4, 10, "toy")
    wait_for(queue, turned_down, "review")
    assert queue.discard(turned_down).startswith("Discarded.")
    assert queue.status(turned_down)[0].startswith("Discarded") and queue.review_files(turned_down) == (None, None)
    assert not (tmp_path / "jobs" / turned_down).exists() and len(started) == 1


def test_the_app_refuses_an_idm_folder_that_is_not_there(tmp_path):
    from core.cli import UsageError
    from core.play.app import serve

    with pytest.raises(UsageError, match="--idms .*missing: no such folder"):
        serve(idms=str(tmp_path / "missing"))  # before anything is loaded or served

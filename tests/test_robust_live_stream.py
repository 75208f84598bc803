"""LIVE_STREAM close(): results for every frame already accepted are delivered before close() returns, none after."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from edge_embedder import (
    BaseOptions,
    EmbedderClosedError,
    ImageClassifier,
    ImageClassifierOptions,
    ImageEmbedder,
    ImageEmbedderOptions,
    RunningMode,
)

from .conftest import FP32_MODEL, MODELS, photo


def _live(callback, task="embedder"):
    base = BaseOptions(model_asset_path=FP32_MODEL if task == "embedder" else
                       MODELS / "efficientnet_lite0_classifier_fp32.tflite")
    if task == "embedder":
        return ImageEmbedder.create_from_options(ImageEmbedderOptions(
            base_options=base, running_mode=RunningMode.LIVE_STREAM, result_callback=callback))
    return ImageClassifier.create_from_options(ImageClassifierOptions(
        base_options=base, running_mode=RunningMode.LIVE_STREAM, result_callback=callback))


class Recorder:
    """A callback that records what it got and whether close() had already returned then."""

    def __init__(self, slow_first: float = 0.0) -> None:
        self.got: list[int] = []
        self.after_close: list[int] = []
        self.closed = threading.Event()
        self.first_started = threading.Event()
        self.slow_first = slow_first
        self.lock = threading.Lock()

    def __call__(self, result, image, ts) -> None:
        if not self.got:
            self.first_started.set()
            time.sleep(self.slow_first)  # the worker is busy: later frames wait in the pending slot
        with self.lock:
            self.got.append(ts)
            if self.closed.is_set():
                self.after_close.append(ts)


@pytest.mark.parametrize("task", ["embedder", "classifier"])
def test_the_last_accepted_frame_is_delivered_before_close_returns(task):
    rec = Recorder(slow_first=0.3)
    e = _live(rec, task)
    send = e.embed_async if task == "embedder" else e.classify_async
    send(photo("chelsea"), 0)
    assert rec.first_started.wait(10)
    for ts in (1, 2, 3):  # 1 and 2 are replaced in the pending slot (the freshest-frame policy), 3 waits
        send(photo("coffee"), ts)
    e.close()
    rec.closed.set()
    assert rec.got == [0, 3]  # the last accepted frame's result arrived before close() returned
    time.sleep(0.2)
    assert rec.after_close == []
    s = e.live_stream_stats
    assert (s.submitted, s.processed, s.dropped, s.failed) == (4, 2, 2, 0)


def test_close_right_after_submitting_still_delivers_that_frame():
    for _ in range(5):  # the frame may be pending or already in flight: delivered either way
        rec = Recorder()
        e = _live(rec)
        e.embed_async(photo("rocket"), 7)
        e.close()
        rec.closed.set()
        assert rec.got == [7]
        s = e.live_stream_stats
        assert s.submitted == s.processed == 1 and s.dropped == 0


def test_the_delivered_result_is_the_frame_s_result(fp32_embedder):
    results = {}

    def callback(result, image, ts):
        results[ts] = result.embeddings[0].embedding.copy()

    e = _live(callback)
    frame = photo("astronaut")
    e.embed_async(frame, 42)
    e.close()
    np.testing.assert_array_equal(results[42], fp32_embedder.embed(frame).embeddings[0].embedding)


def test_frames_sent_while_close_runs_are_either_delivered_or_refused():
    rec = Recorder(slow_first=0.2)
    e = _live(rec)
    accepted, refused = [], []

    def sender() -> None:
        for ts in range(1, 400):
            try:
                e.embed_async(photo("chelsea"), ts)
                accepted.append(ts)
            except EmbedderClosedError:
                refused.append(ts)
                return

    e.embed_async(photo("coffee"), 0)
    assert rec.first_started.wait(10)
    t = threading.Thread(target=sender)
    t.start()
    time.sleep(0.05)
    e.close()
    rec.closed.set()
    t.join(10)
    s = e.live_stream_stats
    assert refused, "a frame sent after close() began must be refused"
    assert rec.after_close == []
    assert accepted and rec.got[-1] == accepted[-1]  # the last accepted frame was delivered
    assert s.submitted == 1 + len(accepted) == s.processed + s.dropped + s.failed


def test_close_from_inside_a_callback_returns_and_drops_only_what_it_cannot_wait_for():
    holder: dict = {}
    delivered = []
    closed_in_callback = threading.Event()
    resume = threading.Event()

    def callback(result, image, ts):
        delivered.append(ts)
        if ts == 0:
            resume.wait(10)  # let frame 1 wait in the pending slot
            holder["e"].close()  # cannot wait for its own thread
            closed_in_callback.set()

    e = holder["e"] = _live(callback)
    e.embed_async(photo("chelsea"), 0)
    time.sleep(0.2)
    e.embed_async(photo("coffee"), 1)
    resume.set()
    assert closed_in_callback.wait(10)
    e.close()  # from outside: waits for the worker, idempotent
    assert delivered == [0]
    s = e.live_stream_stats
    assert (s.submitted, s.processed, s.dropped) == (2, 1, 1)
    with pytest.raises(EmbedderClosedError):
        e.embed_async(photo("chelsea"), 2)

"""VIDEO and LIVE_STREAM running modes, as MediaPipe defines them, without its defects."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from edge_embedder import (
    BaseOptions,
    EmbedderClosedError,
    ImageEmbedder,
    ImageEmbedderOptions,
    OptionsError,
    RunningMode,
)

from .conftest import FP32_MODEL, photo

#: How long a test waits for a result before calling it a hang. Not a speed target: these tests also run under
#: emulation (tests/arm/check.py), where one float32 inference takes seconds. How fast ``embed_async`` returns
#: is measured by benchmarks/bench_live_stream.py, not asserted here.
HANG_GUARD_S = 300


def _until(condition) -> bool:
    """Poll ``condition`` until it holds (True) or the hang guard runs out (False)."""
    deadline = time.monotonic() + HANG_GUARD_S
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _live(callback, model=FP32_MODEL):
    return ImageEmbedder.create_from_options(ImageEmbedderOptions(
        base_options=BaseOptions(model_asset_path=model), running_mode=RunningMode.LIVE_STREAM,
        result_callback=callback))


def test_video_frames_of_changing_size_and_a_gray_frame(fp32_embedder):
    opts = ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=FP32_MODEL), running_mode=RunningMode.VIDEO)
    frames = [photo("chelsea"), photo("coffee"), photo("chelsea")[..., 0], photo("rocket")]
    with ImageEmbedder.create_from_options(opts) as v:
        results = [v.embed_for_video(f, ts) for ts, f in zip((0, 33, 66, 100), frames)]
        with pytest.raises(OptionsError, match="strictly increasing"):
            v.embed_for_video(frames[0], 50)
    for f, r in zip(frames, results):
        np.testing.assert_array_equal(r.embeddings[0].embedding, fp32_embedder.embed(f).embeddings[0].embedding)
    assert [r.timestamp_ms for r in results] == [0, 33, 66, 100]


def test_live_stream_delivers_results_in_order_and_never_blocks():
    got = []
    started, release, finished0 = threading.Event(), threading.Event(), threading.Event()
    delivered = {ts: threading.Event() for ts in range(4)}

    def callback(result, image, ts):
        got.append((ts, result.embeddings[0].embedding.copy()))
        if ts == 0:  # hold the worker inside the first callback until the test lets it go
            started.set()
            release.wait(HANG_GUARD_S)
            finished0.set()
        delivered[ts].set()

    with _live(callback) as e:
        frames = [photo(n) for n in ("chelsea", "coffee", "astronaut", "rocket")]
        e.embed_async(frames[0], 0)
        assert started.wait(HANG_GUARD_S)
        e.embed_async(frames[1], 1)  # returns while the worker is busy: enqueueing never waits for it
        assert not finished0.is_set()
        release.set()
        assert delivered[1].wait(HANG_GUARD_S)
        for ts in (2, 3):  # one frame per result, whatever the machine's speed: nothing is dropped
            e.embed_async(frames[ts], ts)
            assert delivered[ts].wait(HANG_GUARD_S)
        stats = e.live_stream_stats
    assert [ts for ts, _ in got] == [0, 1, 2, 3]
    assert stats.submitted == 4 and stats.processed == 4 and stats.dropped == 0
    with ImageEmbedder.create_from_model_path(FP32_MODEL) as ref:
        np.testing.assert_array_equal(got[1][1], ref.embed(frames[1]).embeddings[0].embedding)


def test_live_stream_drops_the_older_pending_frame_and_counts_it():
    seen = []
    frame = photo("chelsea")

    def slow_consumer(result, image, ts):
        seen.append(ts)
        time.sleep(0.05)  # the app is busy: frames keep arriving meanwhile

    with _live(slow_consumer) as e:
        for ts in range(40):  # one frame every 5 ms, far faster than 50 ms per result
            e.embed_async(frame, ts)
            time.sleep(0.005)
        assert _until(lambda: e.live_stream_stats.processed + e.live_stream_stats.dropped == 40)
        stats = e.live_stream_stats
    assert stats.submitted == 40
    assert stats.dropped > 0 and stats.processed + stats.dropped == 40
    assert seen == sorted(seen) and seen[-1] == 39  # the freshest frame is never the one dropped


def test_caller_may_reuse_its_frame_buffer():
    got = {}
    done = threading.Event()
    buf = photo("chelsea").copy()

    def callback(result, image, ts):
        got[ts] = result.embeddings[0].embedding
        done.set()

    with _live(callback) as e:
        e.embed_async(buf, 0)
        buf[:] = 0  # overwritten right after the call, as a camera loop does
        assert done.wait(HANG_GUARD_S)
    with ImageEmbedder.create_from_model_path(FP32_MODEL) as ref:
        np.testing.assert_array_equal(got[0], ref.embed(photo("chelsea")).embeddings[0].embedding)


def test_a_raising_callback_is_logged_and_the_stream_continues(caplog):
    calls = []
    done = threading.Event()

    def callback(result, image, ts):
        calls.append(ts)
        if ts == 0:
            raise RuntimeError("user bug")
        done.set()

    with _live(callback) as e:
        e.embed_async(photo("chelsea"), 0)
        assert _until(lambda: e.live_stream_stats.callback_errors == 1)  # frame 0 delivered, not dropped as stale
        e.embed_async(photo("coffee"), 1)
        assert done.wait(HANG_GUARD_S)
        assert e.live_stream_stats.callback_errors == 1
    assert calls == [0, 1]
    assert "user bug" in caplog.text


def test_a_bad_frame_is_counted_and_the_stream_continues():
    done = threading.Event()
    with _live(lambda r, img, ts: done.set()) as e:
        e.embed_async("/no/such/frame.jpg", 0)
        assert _until(lambda: e.live_stream_stats.failed == 1)  # taken and failed, not dropped as stale
        e.embed_async(photo("coffee"), 1)
        assert done.wait(HANG_GUARD_S)
        assert e.live_stream_stats.failed == 1


def test_no_callback_after_close_returns():
    after_close = []
    closed = threading.Event()

    def callback(result, image, ts):
        if closed.is_set():
            after_close.append(ts)

    e = _live(callback)
    for ts in range(20):
        e.embed_async(photo("chelsea"), ts)
    e.close()
    closed.set()
    time.sleep(0.3)
    assert after_close == []
    with pytest.raises(EmbedderClosedError):
        e.embed_async(photo("chelsea"), 100)
    e.close()  # idempotent


def test_close_from_inside_the_callback_does_not_deadlock():
    done = threading.Event()
    holder = {}

    def callback(result, image, ts):
        holder["e"].close()
        done.set()

    holder["e"] = _live(callback)
    holder["e"].embed_async(photo("chelsea"), 0)
    assert done.wait(HANG_GUARD_S)


def test_wrong_method_for_the_mode():
    with _live(lambda *a: None) as e:
        with pytest.raises(OptionsError, match="LIVE_STREAM"):
            e.embed(photo("chelsea"))
        with pytest.raises(OptionsError, match="strictly increasing"):
            e.embed_async(photo("chelsea"), 5)
            e.embed_async(photo("chelsea"), 5)
    with ImageEmbedder.create_from_model_path(FP32_MODEL) as e:
        with pytest.raises(OptionsError, match="LIVE_STREAM"):
            e.embed_async(photo("chelsea"), 0)

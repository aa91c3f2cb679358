"""StreamLanes: the host buffers between the frame loop and its device, on the CPU (where the
CUDA streams and events are absent but the slots, the order and the back-pressure are the same)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from u2video.streams import StreamLanes


def batch(k: int, size: int = 2) -> list[np.ndarray]:
    """Batch ``k``: frames whose every pixel says which batch and frame they are."""
    return [np.full((6, 8, 3), (k * size + i) % 251, np.uint8) for i in range(size)]


def test_downloads_come_back_in_order_and_unchanged_with_a_slow_consumer():
    """A consumer slower than the producer: every batch arrives in order with its own pixels,
    and no buffer is refilled while the consumer still holds it (the producer waits)."""
    lanes = StreamLanes(torch.device("cpu"), depth=3)
    handed: list = []
    log: list[tuple[str, int]] = []
    lock = threading.Lock()
    seen: list[tuple[int, bool]] = []

    def consume() -> None:
        for k in range(12):
            while len(handed) <= k:
                time.sleep(0.001)
            done = handed[k]
            time.sleep(0.02)  # slower than the producer: it has to wait for buffers
            pixels = done.wait()
            expected = np.stack(batch(k)) + 1
            seen.append((k, pixels.shape == expected.shape and bool((pixels == expected).all())))
            with lock:
                log.append(("release", k))
            done.release()

    consumer = threading.Thread(target=consume)
    consumer.start()
    for k in range(12):
        frames = lanes.upload(batch(k))
        with lanes.compute():
            pixels = frames + 1
        done = lanes.download(pixels)
        with lock:
            log.append(("download", k))
        handed.append(done)
    consumer.join(timeout=30)
    assert seen == [(k, True) for k in range(12)]
    for k in range(3, 12):  # the k-th batch got a buffer only after batch k-3 gave its back
        assert log.index(("release", k - 3)) < log.index(("download", k)), log


def test_uploaded_frames_do_not_change_when_their_buffer_is_refilled():
    lanes = StreamLanes(torch.device("cpu"), depth=2)
    first = lanes.upload(batch(0))
    later = [lanes.upload(batch(k)) for k in range(1, 6)]  # every buffer refilled twice
    assert torch.equal(first, torch.from_numpy(np.stack(batch(0))))
    assert all(torch.equal(t, torch.from_numpy(np.stack(batch(k)))) for k, t in enumerate(later, 1))


def test_a_download_gives_up_when_told_rather_than_wait_for_a_consumer_that_is_gone():
    lanes = StreamLanes(torch.device("cpu"), depth=2)
    pixels = torch.zeros(1, 4, 4, 3, dtype=torch.uint8)
    held = [lanes.download(pixels), lanes.download(pixels)]  # nobody releases them
    assert all(held)
    assert lanes.download(pixels, keep_waiting=lambda: False) is None
    held[0].release()
    held[0].release()  # twice: the buffer goes back once
    assert lanes.download(pixels, keep_waiting=lambda: False) is not None
    assert lanes.download(pixels, keep_waiting=lambda: False) is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_lanes_keep_order_and_pixels_without_host_syncs():
    """On CUDA: pinned buffers, three streams; the loop's own calls never sync the host
    (set_sync_debug_mode raises on one), only Download.wait does."""
    lanes = StreamLanes(torch.device("cuda"), depth=3)
    outs = []
    torch.cuda.set_sync_debug_mode("error")
    try:
        for k in range(8):
            frames = lanes.upload(batch(k, 4))
            with lanes.compute():
                pixels = (frames.float() * 2).clamp_(0, 255).to(torch.uint8)
            outs.append(lanes.download(pixels))
            if len(outs) >= 3:
                done = outs.pop(0)
                torch.cuda.set_sync_debug_mode("default")  # the one sync the loop's consumer makes
                got = done.wait().copy()
                done.release()
                torch.cuda.set_sync_debug_mode("error")
                j = k - 2
                assert (got == np.clip(np.stack(batch(j, 4)).astype(int) * 2, 0, 255)).all()
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("render_name", ["rgba", "blur", "planes"])
def test_the_frame_loop_on_cuda_never_waits_for_the_gpu(u2netp_store, render_name):
    """The steady state of run_video's loop (upload, network, smoothing, refinement, hold,
    compositing, download) under set_sync_debug_mode("error"): any .item(), .cpu() or
    synchronising copy raises. Only Download.wait, on the encoder's side, waits (an event)."""
    from u2video.alpha import MatteStage
    from u2video.backgrounds import parse_background
    from u2video.compose import Compositor, rgba_to_yuva444p10, to_rgba
    from u2video.config import DeviceConfig, DeviceKind, MatteConfig, ModelConfig, Normalization
    from u2video.segmenter import Segmenter

    from .conftest import synthetic_scene

    cuda = torch.device("cuda")
    segmenter = Segmenter.from_config(ModelConfig("u2netp", 64, Normalization.FIXED), DeviceConfig(DeviceKind.CUDA))
    stage, lanes = MatteStage(MatteConfig()), StreamLanes(cuda)
    render = to_rgba if render_name == "rgba" else Compositor(parse_background("blur"))
    scenes = [synthetic_scene(96, 128, seed=s) for s in range(4)]
    finished = 0
    try:
        with lanes.compute():
            for k in range(24):
                if k == 12:  # after the window filled, the allocator warmed up and cuDNN chose
                    torch.cuda.set_sync_debug_mode("error")
                frames = lanes.upload([scenes[(k + i) % 4] for i in range(2)])
                preds = segmenter.predict_lowres(frames)
                out_frames, alpha, keys = stage.push(frames, preds, [2 * k, 2 * k + 1])
                if keys:
                    pixels = render(out_frames, alpha)
                    if render_name == "planes":  # ProRes 4444's planes, converted on the GPU
                        pixels = rgba_to_yuva444p10(pixels).view(torch.uint8)
                    done = lanes.download(pixels)
                    pixels = done.wait()
                    finished += len(pixels)
                    done.release()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert finished > 20

"""Ways to run U²-Netp on the CPU, one [1,3,320,320] frame at a time, with every core.

Prints milliseconds a frame for: onnxruntime and OpenVINO on the network u2video exports,
PyTorch eager (NCHW and channels_last), TorchScript trace + freeze + optimize_for_inference,
and torch.compile (inductor, frozen weights; its compile time too). Then the two CPU runtimes
as u2video's frame loop runs them, a call per core in flight (onnxruntime: a session of one
thread each; OpenVINO: a stream each), in alternating rounds. This is how the CPU runtime was
chosen (README, "Speed").

Run:  U2NET_HOME=/path/to/models python benchmarks/runtimes.py [--skip-compile] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

from u2video.device import OnnxRuntimeNetwork, OpenVinoNetwork, cpu_threads
from u2video.model.weights import load_network


def ms_per_call(fn: Callable[[], object], calls: int = 10, warm: int = 3) -> float:
    for _ in range(warm):
        fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1000


def in_flight_ms(run: Callable[[torch.Tensor], torch.Tensor], workers: int, frames: int = 16) -> float:
    """Milliseconds a frame with ``workers`` calls at once, as ``Segmenter.predict_batches`` runs them."""
    x = torch.rand(1, 3, 320, 320)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, [x] * workers))  # warm-up: every thread's request or session
        start = time.perf_counter()
        list(pool.map(run, [x] * frames))
    return (time.perf_counter() - start) / frames * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-compile", action="store_true", help="leave out torch.compile (about 45 s)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    threads = cpu_threads()
    torch.set_num_threads(threads)
    net, _ = load_network("u2netp")
    x = torch.rand(1, 3, 320, 320)
    print(f"u2netp at 320x320, {threads} threads, torch {torch.__version__}")
    runtime = OnnxRuntimeNetwork(net, threads=threads)
    print(f"onnxruntime (exported network): {ms_per_call(lambda: runtime(x)):.0f} ms")
    latency = OpenVinoNetwork(net, streams=1, threads=threads)
    print(f"OpenVINO (exported network), one stream: {ms_per_call(lambda: latency(x)):.0f} ms")
    with torch.inference_mode():
        print(f"PyTorch eager, NCHW: {ms_per_call(lambda: net(x)):.0f} ms")
        net_cl, x_cl = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
        print(f"PyTorch eager, channels_last: {ms_per_call(lambda: net_cl(x_cl)):.0f} ms")
        scripted = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net_cl, x_cl)))
        print(f"TorchScript trace + freeze + optimize_for_inference: {ms_per_call(lambda: scripted(x_cl)):.0f} ms")
    print(f"\na call per core in flight ({threads}), as the frame loop runs them, ms a frame:")
    sessions = OnnxRuntimeNetwork(net, threads=1)
    streams = OpenVinoNetwork(net, streams=threads, threads=threads)
    rounds = [(in_flight_ms(sessions, threads), in_flight_ms(streams, threads)) for _ in range(args.rounds)]
    for i, (a, b) in enumerate(rounds, 1):
        print(f"round {i}: onnxruntime {a:.0f}, OpenVINO {b:.0f} (OpenVINO {a / b:.2f}x the frames/s)")
    if args.skip_compile:
        return
    import torch._inductor.config as inductor

    inductor.freezing = True
    with torch.no_grad():
        start = time.perf_counter()
        compiled = torch.compile(net_cl)
        compiled(x_cl)
        print(f"torch.compile (inductor, freezing): compiled in {time.perf_counter() - start:.0f} s, "
              f"{ms_per_call(lambda: compiled(x_cl)):.0f} ms")


if __name__ == "__main__":
    main()

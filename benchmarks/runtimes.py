"""Ways to run U²-Netp on the CPU, one [1,3,320,320] frame at a time, with every core.

Prints milliseconds a frame for: onnxruntime on the network u2video exports (the CPU default),
PyTorch eager (NCHW and channels_last), TorchScript trace + freeze + optimize_for_inference,
and torch.compile (inductor, frozen weights; its compile time too). This is how the CPU
runtime was chosen (README, "Speed").

Run:  U2NET_HOME=/path/to/models python benchmarks/runtimes.py
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import torch

from u2video.device import OnnxRuntimeNetwork, cpu_threads
from u2video.model.weights import load_network


def ms_per_call(fn: Callable[[], object], calls: int = 10, warm: int = 3) -> float:
    for _ in range(warm):
        fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1000


def main() -> None:
    warnings.simplefilter("ignore")
    threads = cpu_threads()
    torch.set_num_threads(threads)
    net, _ = load_network("u2netp")
    x = torch.rand(1, 3, 320, 320)
    print(f"u2netp at 320x320, {threads} threads, torch {torch.__version__}")
    runtime = OnnxRuntimeNetwork(net, threads=threads)
    print(f"onnxruntime (exported network): {ms_per_call(lambda: runtime(x)):.0f} ms")
    with torch.inference_mode():
        print(f"PyTorch eager, NCHW: {ms_per_call(lambda: net(x)):.0f} ms")
        net_cl, x_cl = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
        print(f"PyTorch eager, channels_last: {ms_per_call(lambda: net_cl(x_cl)):.0f} ms")
        scripted = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net_cl, x_cl)))
        print(f"TorchScript trace + freeze + optimize_for_inference: {ms_per_call(lambda: scripted(x_cl)):.0f} ms")
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

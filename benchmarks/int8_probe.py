"""INT8 feasibility for issue 15 (not a feature yet): NNCF's post-training quantization of
u2video's exported u2netp (fixed normalisation, 320²) for OpenVINO, plain (MIXED preset) and with
accuracy control (``acc``: layers reverted to floating point until the mean IoU at 0.5 against
fp32 drops by at most 0.01), on 109 calibration frames of ../shared/media and 31 validation
inputs (the ten official test images and frames of the clips the calibration did not use).
Prints ms a frame (a stream per core) and mean/max |Δ| and mean/min IoU against fp32.
Needs ``pip install nncf`` (not a u2video dependency yet); the accuracy-controlled run takes
about 15 minutes on 2 cores.

    U2NET_HOME=<models> python benchmarks/int8_probe.py [acc]
"""
import time, sys, glob, numpy as np, torch, av, cv2, openvino as ov, nncf
from threading import local
from concurrent.futures import ThreadPoolExecutor
from u2video.device import export_onnx
from u2video.model.weights import load_network
MEAN, STD = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
def prep(rgb):
    x = cv2.resize(rgb, (320, 320), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
    return ((x - MEAN) / STD).transpose(2, 0, 1)[None].astype(np.float32)
def clip_frames(path, every, limit, offset=0):
    out = []
    with av.open(path) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % every == offset: out.append(f.to_ndarray(format="rgb24"))
            if len(out) >= limit: break
    return out
clips = sorted(glob.glob("/work/shared/media/*.mkv")) + ["/work/shared/media/one-by-one-person-detection.mp4"]
calib = [prep(f) for c in clips for f in clip_frames(c, 7, 60)]
valid_imgs = [cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB) for p in sorted(glob.glob("/work/shared/reference/u2net_official/images/*"))]
valid = [prep(f) for f in valid_imgs] + [prep(f) for c in clips for f in clip_frames(c, 23, 6, offset=11)]
print(len(calib), "calibration,", len(valid), "validation inputs")
net, _ = load_network("u2netp")
core = ov.Core()
model = core.read_model(export_onnx(net)); model.reshape([1, 3, 320, 320])
cfg = {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": 2, "INFERENCE_NUM_THREADS": 2, "INFERENCE_PRECISION_HINT": "f32"}
fp32 = core.compile_model(model, "CPU", cfg)
def outputs(compiled, inputs):
    r = compiled.create_infer_request()
    return [r.infer({0: x})[0][0, 0].copy() for x in inputs]
ref = outputs(fp32, valid)
def metrics(outs):
    d = [np.abs(a - b).mean() for a, b in zip(outs, ref)]
    iou = [((a > .5) & (b > .5)).sum() / max(((a > .5) | (b > .5)).sum(), 1) for a, b in zip(outs, ref)]
    return float(np.mean(d)), float(np.max(d)), float(np.mean(iou)), float(np.min(iou))
def speed(compiled):
    loc = local()
    def run(x):
        if not hasattr(loc, "r"): loc.r = compiled.create_infer_request()
        loc.r.infer({0: x})
    with ThreadPoolExecutor(2) as p:
        list(p.map(run, calib[:4])); t = time.perf_counter(); list(p.map(run, calib[:24]))
    return (time.perf_counter() - t) / 24 * 1000
print(f"fp32: {speed(fp32):.0f} ms/frame")
def report(name, qmodel):
    c = core.compile_model(qmodel, "CPU", cfg)
    m = metrics(outputs(c, valid))
    print(f"{name}: {speed(c):.0f} ms/frame; mean|Δ| {m[0]:.4f} (max {m[1]:.4f}), IoU mean {m[2]:.4f} min {m[3]:.4f}", flush=True)
ds = nncf.Dataset(calib)
t = time.time(); q = nncf.quantize(model, ds, preset=nncf.QuantizationPreset.MIXED, subset_size=len(calib)); print("ptq s", time.time() - t)
report("ptq mixed", q)
if "acc" in sys.argv:
    vds = nncf.Dataset(valid)
    def validate(compiled_model, data):
        r = compiled_model.create_infer_request()
        outs = [r.infer({0: x})[0][0, 0].copy() for x in data]
        iou = [((a > .5) & (b > .5)).sum() / max(((a > .5) | (b > .5)).sum(), 1) for a, b in zip(outs, ref)]
        return float(np.mean(iou))
    t = time.time()
    qa = nncf.quantize_with_accuracy_control(model, ds, vds, validation_fn=validate, max_drop=0.01,
                                             drop_type=nncf.DropType.ABSOLUTE, preset=nncf.QuantizationPreset.MIXED,
                                             subset_size=len(calib))
    print("acc-control s", time.time() - t)
    report("accuracy control (IoU drop <= 0.01)", qa)

#!/usr/bin/env python3
"""PyTorch side of quiver-embed's image_bench example: images/s of EfficientNet-Lite0 on the same files, with PIL's
decode, centre crop and bicubic resize, batches of 32, best of --runs. Prints one number.

The network is the one in crates/quiver-embed/testdata/make_image_reference.py (torch's own conv2d and batch norm
ops on the original weights file)."""
import argparse
import importlib.util
import os
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "ref", os.path.join(HERE, "..", "crates", "quiver-embed", "testdata", "make_image_reference.py"))
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)


def folded_forward(sd):
    """The same network with each batch norm folded into its convolution's weights and bias (what an inference
    runtime does), so the comparison is not against unfused batch norm."""
    import torch.nn.functional as F
    folded = {}
    for k in sd:
        if k.endswith(".running_mean"):
            bn = k[: -len(".running_mean")]
            conv = bn.replace("_bn0", "_expand_conv").replace("_bn1", "_depthwise_conv").replace("_bn2", "_project_conv")
            if bn == "_bn0":
                conv = "_conv_stem"
            elif bn == "_bn1":
                conv = "_conv_head"
            scale = sd[bn + ".weight"] / torch.sqrt(sd[bn + ".running_var"] + ref.EPS)
            w = (sd[conv + ".weight"] * scale[:, None, None, None]).contiguous(memory_format=torch.channels_last)
            folded[conv] = (w, sd[bn + ".bias"] - sd[bn + ".running_mean"] * scale)

    def conv(x, name, stride=1, groups=1, relu6=True):
        w, b = folded[name]
        x = F.conv2d(ref.same_pad(x, w.shape[-1], stride), w, b, stride, 0, 1, groups)
        return F.relu6(x) if relu6 else x

    @torch.no_grad()
    def forward(_sd, x):
        x = conv(x, "_conv_stem", stride=2)
        i, c = 0, 32
        for repeats, k, stride, expand, out in ref.STAGES:
            for r in range(repeats):
                p, s, inp = f"_blocks.{i}", stride if r == 0 else 1, x
                if expand != 1:
                    x = conv(x, p + "._expand_conv")
                x = conv(x, p + "._depthwise_conv", stride=s, groups=x.shape[1])
                x = conv(x, p + "._project_conv", relu6=False)
                if s == 1 and c == out:
                    x = x + inp
                i, c = i + 1, out
        x = conv(x, "_conv_head")
        return (F.normalize(x.mean(dim=(2, 3)), dim=1),)

    return forward


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--fold", action="store_true",
                    help="fold batch norm into the convolutions first and run in channels-last layout")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    sd = {k: v.float() for k, v in torch.load(a.weights, map_location="cpu").items() if v.is_floating_point()}
    forward = ref.forward
    if a.fold:
        forward = folded_forward(sd)
    files = sorted(os.path.join(a.images, f) for f in os.listdir(a.images) if not f.endswith(".json"))
    data = [open(f, "rb").read() for f in files]
    inputs = [data[i % len(data)] for i in range(a.n)]

    def run(batch):
        from io import BytesIO
        from PIL import Image
        x = torch.cat([ref.tensor(ref.prepare(Image.open(BytesIO(b)))) for b in batch])
        if a.fold:
            x = x.contiguous(memory_format=torch.channels_last)
        return forward(sd, x)[0]

    run(inputs[:8])
    best = float("inf")
    for _ in range(a.runs):
        t = time.perf_counter()
        for i in range(0, len(inputs), 32):
            run(inputs[i : i + 32])
        best = min(best, time.perf_counter() - t)
    print(f"{a.n / best:.2f}")


if __name__ == "__main__":
    main()

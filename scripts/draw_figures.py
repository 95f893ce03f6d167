#!/usr/bin/env python3
"""Draw the schematic figures of docs/concepts.md as small hand-built SVG files.

Plain Python 3 standard library only. Every figure is computed from a deterministic synthetic 2-D point set
(`random.Random(7)`, a fresh generator per figure): the KD-tree's median splits, the LSH hyperplanes and their
buckets, k-means cells and their Voronoi polygons, the greedy walk over a small layered graph, and so on are
computed for real, not drawn by hand. Running the script twice writes byte-identical files.

    python3 scripts/draw_figures.py                 # writes docs/figures/*.svg
    python3 scripts/draw_figures.py --out /tmp/figs
"""

import argparse
import math
import os
import random

W, H = 420, 280  # canvas of one figure, px
PAD = 22  # margin around the data panel
TOP = 26  # room for the title

GREY = "#9aa3ad"
DARK = "#1f2933"
BLUE = "#2563eb"
RED = "#dc2626"
GREEN = "#16a34a"
ORANGE = "#ea580c"
LIGHT = "#dbeafe"
PALETTE = ["#fde68a", "#bfdbfe", "#bbf7d0", "#fecaca", "#ddd6fe", "#fed7aa", "#a5f3fc", "#f5d0fe",
           "#d9f99d", "#e5e7eb", "#fbcfe8", "#c7d2fe"]
DOT = ["#b45309", "#1d4ed8", "#15803d", "#b91c1c", "#6d28d9", "#c2410c", "#0e7490", "#a21caf",
       "#4d7c0f", "#4b5563", "#be185d", "#4338ca"]


def f(x):
    """A coordinate as text: one decimal, no '-0.0'."""
    s = "%.1f" % x
    return "0.0" if s == "-0.0" else s


class Svg:
    def __init__(self, title, w=W, h=H):
        self.w, self.h = w, h
        self.parts = []
        self.text(w / 2, 17, title, size=13, anchor="middle", weight="bold")

    def add(self, s):
        self.parts.append(s)

    def line(self, x1, y1, x2, y2, color=GREY, width=1.0, dash=None, opacity=None):
        extra = ' stroke-dasharray="%s"' % dash if dash else ""
        if opacity is not None:
            extra += ' stroke-opacity="%s"' % opacity
        self.add('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="%s"%s/>'
                 % (f(x1), f(y1), f(x2), f(y2), color, width, extra))

    def circle(self, x, y, r, fill=GREY, stroke=None, width=1.0):
        st = ' stroke="%s" stroke-width="%s"' % (stroke, width) if stroke else ""
        self.add('<circle cx="%s" cy="%s" r="%s" fill="%s"%s/>' % (f(x), f(y), r, fill, st))

    def rect(self, x, y, w, h, fill="none", stroke=None, width=1.0, opacity=None):
        st = ' stroke="%s" stroke-width="%s"' % (stroke, width) if stroke else ""
        if opacity is not None:
            st += ' fill-opacity="%s"' % opacity
        self.add('<rect x="%s" y="%s" width="%s" height="%s" fill="%s"%s/>' % (f(x), f(y), f(w), f(h), fill, st))

    def polygon(self, pts, fill, stroke=None, width=1.0, opacity=None):
        st = ' stroke="%s" stroke-width="%s"' % (stroke, width) if stroke else ""
        if opacity is not None:
            st += ' fill-opacity="%s"' % opacity
        self.add('<polygon points="%s" fill="%s"%s/>' % (" ".join("%s,%s" % (f(x), f(y)) for x, y in pts), fill, st))

    def polyline(self, pts, color, width=1.5):
        self.add('<polyline points="%s" fill="none" stroke="%s" stroke-width="%s"/>'
                 % (" ".join("%s,%s" % (f(x), f(y)) for x, y in pts), color, width))

    def text(self, x, y, s, size=11, anchor="start", color=DARK, weight=None):
        # keep labels short enough for the canvas: this is a check, not a layout engine
        assert len(s) * size * 0.55 < self.w, s
        wt = ' font-weight="%s"' % weight if weight else ""
        s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        self.add('<text x="%s" y="%s" font-family="sans-serif" font-size="%s" text-anchor="%s" fill="%s"%s>%s</text>'
                 % (f(x), f(y), size, anchor, color, wt, s))

    def star(self, x, y, r=6.0, fill=RED):
        pts = []
        for i in range(10):
            a = -math.pi / 2 + i * math.pi / 5
            rr = r if i % 2 == 0 else r * 0.45
            pts.append((x + rr * math.cos(a), y + rr * math.sin(a)))
        self.polygon(pts, fill, stroke="white", width=0.8)

    def cross(self, x, y, r=4.0, color=DARK, width=2.0):
        self.line(x - r, y - r, x + r, y + r, color, width)
        self.line(x - r, y + r, x + r, y - r, color, width)

    def render(self):
        head = ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">\n'
                % (self.w, self.h, self.w, self.h))
        bg = '<rect x="0" y="0" width="%d" height="%d" fill="white"/>\n' % (self.w, self.h)
        return head + bg + "\n".join(self.parts) + "\n</svg>\n"


# ---------------------------------------------------------------------------------------------------- data


def blobs(rng, n=72):
    """Points in [0,1]^2: four Gaussian clusters plus a little uniform noise."""
    centres = [(0.25, 0.3), (0.72, 0.25), (0.62, 0.72), (0.22, 0.75)]
    pts = []
    for i in range(n):
        if i % 9 == 8:
            pts.append((rng.uniform(0.05, 0.95), rng.uniform(0.05, 0.95)))
            continue
        cx, cy = centres[i % 4]
        x = min(0.97, max(0.03, rng.gauss(cx, 0.11)))
        y = min(0.97, max(0.03, rng.gauss(cy, 0.11)))
        pts.append((x, y))
    return pts


QUERY = (0.47, 0.56)


def to_px(p, x0=PAD, y0=TOP + 4, w=W - 2 * PAD, h=H - TOP - 4 - 34):
    """Data [0,1]^2 to the panel (y up)."""
    return (x0 + p[0] * w, y0 + (1 - p[1]) * h)


def d2(a, b):
    return (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2


def knn(pts, q, k):
    return sorted(range(len(pts)), key=lambda i: (d2(pts[i], q), i))[:k]


def panel(svg):
    x0, y0 = to_px((0, 1))
    x1, y1 = to_px((1, 0))
    svg.rect(x0, y0, x1 - x0, y1 - y0, stroke="#cbd2d9")


def caption(svg, s, line=0):
    svg.text(PAD, H - 20 + 13 * line, s, size=10.5)


def kmeans(pts, k, rng, iters=10, init=None):
    cents = list(init) if init else [pts[i] for i in rng.sample(range(len(pts)), k)]
    assign = [0] * len(pts)
    for _ in range(iters):
        assign = [min(range(len(cents)), key=lambda c: (d2(p, cents[c]), c)) for p in pts]
        new = []
        for c in range(len(cents)):
            mem = [pts[i] for i in range(len(pts)) if assign[i] == c]
            new.append((sum(m[0] for m in mem) / len(mem), sum(m[1] for m in mem) / len(mem)) if mem else cents[c])
        cents = new
    assign = [min(range(len(cents)), key=lambda c: (d2(p, cents[c]), c)) for p in pts]
    return cents, assign


def voronoi_cell(cents, c, box=(0.0, 0.0, 1.0, 1.0)):
    """The Voronoi cell of centroid c inside box, by clipping the box with every perpendicular bisector."""
    x0, y0, x1, y1 = box
    poly = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    a = cents[c]
    for o, b in enumerate(cents):
        if o == c:
            continue
        # keep points p with |p-a|^2 <= |p-b|^2  <=>  2 p.(b-a) <= |b|^2 - |a|^2
        nx, ny = 2 * (b[0] - a[0]), 2 * (b[1] - a[1])
        lim = (b[0] ** 2 + b[1] ** 2) - (a[0] ** 2 + a[1] ** 2)
        out = []
        for i in range(len(poly)):
            p, q = poly[i], poly[(i + 1) % len(poly)]
            fp, fq = nx * p[0] + ny * p[1] - lim, nx * q[0] + ny * q[1] - lim
            if fp <= 0:
                out.append(p)
            if (fp <= 0) != (fq <= 0):
                t = fp / (fp - fq)
                out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
        poly = out
        if not poly:
            break
    return poly


def dots(svg, pts, color=GREY, r=2.6, idx=None):
    for i, p in enumerate(pts):
        if idx is not None and i not in idx:
            continue
        x, y = to_px(p)
        svg.circle(x, y, r, fill=color)


# ---------------------------------------------------------------------------------------------------- figures


def fig_flat():
    rng = random.Random(7)
    pts = blobs(rng)
    svg = Svg("flat: score every point, keep the best k")
    panel(svg)
    qx, qy = to_px(QUERY)
    for p in pts:
        x, y = to_px(p)
        svg.line(qx, qy, x, y, color="#cbd2d9", width=0.6)
    top = knn(pts, QUERY, 5)
    dots(svg, pts)
    for i in top:
        x, y = to_px(pts[i])
        svg.circle(x, y, 4.2, fill=BLUE)
    svg.star(qx, qy)
    caption(svg, "%d distances for %d points: exact, cost grows with n" % (len(pts), len(pts)))
    caption(svg, "red star = query, blue = the true top 5", 1)
    return svg


def kd_build(pts, rows, box, leaf, out_lines, leaves, depth=0):
    if len(rows) <= leaf:
        leaves.append((box, rows))
        return
    xs = [pts[r][0] for r in rows]
    ys = [pts[r][1] for r in rows]
    dim = 0 if (max(xs) - min(xs)) >= (max(ys) - min(ys)) else 1  # widest extent, as kdtree.rs
    rows = sorted(rows, key=lambda r: (pts[r][dim], r))
    mid = len(rows) // 2
    split = pts[rows[mid]][dim]
    x0, y0, x1, y1 = box
    if dim == 0:
        out_lines.append(((split, y0), (split, y1), depth))
        lb, rb = (x0, y0, split, y1), (split, y0, x1, y1)
    else:
        out_lines.append(((x0, split), (x1, split), depth))
        lb, rb = (x0, y0, x1, split), (x0, split, x1, y1)
    kd_build(pts, rows[:mid], lb, leaf, out_lines, leaves, depth + 1)
    kd_build(pts, rows[mid:], rb, leaf, out_lines, leaves, depth + 1)


def fig_kdtree():
    rng = random.Random(7)
    pts = blobs(rng)
    lines, leaves = [], []
    kd_build(pts, list(range(len(pts))), (0.0, 0.0, 1.0, 1.0), 6, lines, leaves)
    svg = Svg("KD-tree: median splits on the widest coordinate")
    panel(svg)
    for box, rows in leaves:
        if box[0] <= QUERY[0] <= box[2] and box[1] <= QUERY[1] <= box[3]:
            a, b = to_px((box[0], box[3])), to_px((box[2], box[1]))
            svg.rect(a[0], a[1], b[0] - a[0], b[1] - a[1], fill=LIGHT)
    for (p, q, depth) in lines:
        a, b = to_px(p), to_px(q)
        svg.line(a[0], a[1], b[0], b[1], color=DARK if depth < 2 else GREY, width=max(0.7, 2.2 - 0.4 * depth))
    dots(svg, pts)
    for i in knn(pts, QUERY, 5):
        x, y = to_px(pts[i])
        svg.circle(x, y, 4.2, fill=BLUE)
    svg.star(*to_px(QUERY))
    caption(svg, "%d leaves of <= 6 points; shaded: the query's leaf" % len(leaves))
    caption(svg, "exact search also visits every leaf whose box may hold a nearer point", 1)
    return svg


WARM = ["#b45309", "#15803d", "#b91c1c", "#6d28d9", "#c2410c", "#a21caf", "#4d7c0f", "#4b5563"]


def clip_unit(c, d):
    """The part of the line c + t*d inside [0,1]^2 (c inside)."""
    lo, hi = -1e9, 1e9
    for k in range(2):
        if abs(d[k]) < 1e-12:
            continue
        t0, t1 = (0 - c[k]) / d[k], (1 - c[k]) / d[k]
        lo, hi = max(lo, min(t0, t1)), min(hi, max(t0, t1))
    return (c[0] + lo * d[0], c[1] + lo * d[1]), (c[0] + hi * d[0], c[1] + hi * d[1])


def sign_buckets(pts, normals, centre):
    keys = []
    for p in pts:
        v = (p[0] - centre[0], p[1] - centre[1])
        keys.append(tuple(1 if n[0] * v[0] + n[1] * v[1] >= 0 else 0 for n in normals))
    return keys


def fig_lsh():
    rng = random.Random(7)
    pts = blobs(rng)
    centre = (0.5, 0.5)
    angles = [rng.uniform(0, math.pi) for _ in range(3)]
    normals = [(math.cos(a), math.sin(a)) for a in angles]
    keys = sign_buckets(pts, normals, centre)
    qkey = sign_buckets([QUERY], normals, centre)[0]
    svg = Svg("LSH: random hyperplanes hash points into buckets")
    panel(svg)
    order = sorted(set(keys))
    for i, p in enumerate(pts):
        x, y = to_px(p)
        c = order.index(keys[i])
        same = keys[i] == qkey
        svg.circle(x, y, 4.0 if same else 2.8, fill=WARM[c % len(WARM)] if not same else BLUE)
    for n in normals:
        # the line through the centre perpendicular to n
        dx, dy = -n[1], n[0]
        seg = clip_unit(centre, (dx, dy))
        a, b = to_px(seg[0]), to_px(seg[1])
        svg.line(a[0], a[1], b[0], b[1], color=DARK, width=1.3)
    svg.star(*to_px(QUERY))
    caption(svg, "1 table x 3 bits: key = which side of each line (%s)" % "".join(map(str, qkey)))
    caption(svg, "blue: the query's bucket, scored exactly (real: more tables, probes)", 1)
    return svg


def principal_axis(pts, rows):
    mx = sum(pts[r][0] for r in rows) / len(rows)
    my = sum(pts[r][1] for r in rows) / len(rows)
    sxx = sum((pts[r][0] - mx) ** 2 for r in rows)
    syy = sum((pts[r][1] - my) ** 2 for r in rows)
    sxy = sum((pts[r][0] - mx) * (pts[r][1] - my) for r in rows)
    theta = 0.5 * math.atan2(2 * sxy, sxx - syy)
    return (math.cos(theta), math.sin(theta))


def pca_regions(pts, rows, size, out):
    if len(rows) <= size:
        out.append(rows)
        return
    ax = principal_axis(pts, rows)
    rows = sorted(rows, key=lambda r: (pts[r][0] * ax[0] + pts[r][1] * ax[1], r))
    mid = len(rows) // 2
    pca_regions(pts, rows[:mid], size, out)
    pca_regions(pts, rows[mid:], size, out)


def fig_kdlsh():
    rng = random.Random(7)
    pts = blobs(rng)
    regions = []
    pca_regions(pts, list(range(len(pts))), 12, regions)
    seeds = [(sum(pts[r][0] for r in g) / len(g), sum(pts[r][1] for r in g) / len(g)) for g in regions]
    cents, assign = kmeans(pts, len(seeds), rng, iters=2, init=seeds)  # refine=2 Lloyd steps
    probed = sorted(range(len(cents)), key=lambda c: (d2(QUERY, cents[c]), c))[:2]
    svg = Svg("KD-LSH: tree regions, LSH inside each region")
    panel(svg)
    for c in probed:
        svg.polygon([to_px(p) for p in voronoi_cell(cents, c)], fill=LIGHT)
    for c in range(len(cents)):
        svg.polygon([to_px(p) for p in voronoi_cell(cents, c)], fill="none", stroke="#cbd2d9")
    # one hash line per probed region, through its centroid (offsets from the centroid are hashed)
    for c in probed:
        a = rng.uniform(0, math.pi)
        dx, dy = math.cos(a), math.sin(a)
        cell = voronoi_cell(cents, c)
        xs = [p[0] for p in cell]
        ys = [p[1] for p in cell]
        r = 0.5 * min(max(xs) - min(xs), max(ys) - min(ys))
        p1 = to_px((cents[c][0] - r * dx, cents[c][1] - r * dy))
        p2 = to_px((cents[c][0] + r * dx, cents[c][1] + r * dy))
        svg.line(p1[0], p1[1], p2[0], p2[1], color=ORANGE, width=1.4, dash="4,2")
    for i, p in enumerate(pts):
        x, y = to_px(p)
        svg.circle(x, y, 2.8, fill=DOT[assign[i] % len(DOT)])
    for c in cents:
        svg.cross(*to_px(c), r=3.5)
    svg.star(*to_px(QUERY))
    caption(svg, "%d regions: median splits on principal axes + 2 Lloyd steps" % len(cents))
    caption(svg, "shaded: the nprobe=2 nearest regions; dashed: one hash bit each", 1)
    return svg


def fig_ivf():
    rng = random.Random(7)
    pts = blobs(rng)
    k = 7
    cents, assign = kmeans(pts, k, rng, iters=12)
    probed = sorted(range(k), key=lambda c: (d2(QUERY, cents[c]), c))[:2]
    svg = Svg("IVF: k-means cells, probe the nearest nprobe")
    panel(svg)
    for c in range(k):
        poly = [to_px(p) for p in voronoi_cell(cents, c)]
        svg.polygon(poly, fill=LIGHT if c in probed else "white", stroke="#9aa3ad")
    for i, p in enumerate(pts):
        x, y = to_px(p)
        svg.circle(x, y, 3.0 if assign[i] in probed else 2.4, fill=BLUE if assign[i] in probed else GREY)
    for c in cents:
        svg.cross(*to_px(c), r=4)
    qx, qy = to_px(QUERY)
    for c in probed:
        x, y = to_px(cents[c])
        svg.line(qx, qy, x, y, color=RED, width=1.0, dash="3,2")
    svg.star(qx, qy)
    miss = [i for i in knn(pts, QUERY, 5) if assign[i] not in probed]
    caption(svg, "nlist=%d cells, nprobe=2: %d of %d points scanned" %
            (k, sum(1 for a in assign if a in probed), len(pts)))
    caption(svg, "true top 5 outside the probed cells: %d (recall@5 = %d/5)" % (len(miss), 5 - len(miss)), 1)
    return svg


def fig_ivfpq():
    rng = random.Random(7)
    pts = blobs(rng)
    k = 4
    cents, assign = kmeans(pts, k, rng, iters=12)
    res = [(p[0] - cents[a][0], p[1] - cents[a][1]) for p, a in zip(pts, assign)]
    # PQ with m=2 sub-spaces of 1 dimension each and 4 centroids per sub-space (2 bits each here; 8 in QuiverDB)
    books = []
    for d in range(2):
        vals = [(r[d], 0.0) for r in res]
        cb, _ = kmeans(vals, 4, rng, iters=15)
        books.append(sorted(c[0] for c in cb))
    svg = Svg("IVF-PQ: encode each point's residual with PQ")
    # left panel: the residuals, all cells pooled, and the PQ grid
    x0, y0, w, h = PAD, TOP + 6, 180, 180
    svg.rect(x0, y0, w, h, stroke="#cbd2d9")
    span = 0.32

    def rp(r):
        return (x0 + w / 2 + r[0] / span * w / 2, y0 + h / 2 - r[1] / span * h / 2)

    for gx in books[0]:
        a, b = rp((gx, -span)), rp((gx, span))
        svg.line(a[0], a[1], b[0], b[1], color="#e5e7eb")
    for gy in books[1]:
        a, b = rp((-span, gy)), rp((span, gy))
        svg.line(a[0], a[1], b[0], b[1], color="#e5e7eb")
    err = 0.0
    for r in res:
        rc = (min(books[0], key=lambda v: abs(v - r[0])), min(books[1], key=lambda v: abs(v - r[1])))
        err += d2(r, rc)
        a, b = rp(r), rp(rc)
        svg.line(a[0], a[1], b[0], b[1], color=ORANGE, width=0.8)
        svg.circle(a[0], a[1], 2.2, fill=GREY)
    for gx in books[0]:
        for gy in books[1]:
            x, y = rp((gx, gy))
            svg.circle(x, y, 3.2, fill=BLUE)
    cx, cy = rp((0, 0))
    svg.cross(cx, cy, r=3)
    svg.text(x0 + w / 2, y0 + h + 13, "residuals x - c(x), all cells", size=10, anchor="middle")
    # right panel: code layout of one 384-d vector
    rx = x0 + w + 18
    svg.text(rx, y0 + 10, "a 384-d vector in IVF-PQ:", size=10.5)
    svg.rect(rx, y0 + 18, 130, 14, fill="#e5e7eb", stroke=GREY)
    svg.text(rx + 65, y0 + 29, "f32: 1,536 B", size=9.5, anchor="middle")
    svg.text(rx, y0 + 48, "minus its cell centroid,", size=10)
    svg.text(rx, y0 + 61, "split into 48 sub-vectors", size=10)
    svg.text(rx, y0 + 74, "of 8 dims; each becomes", size=10)
    svg.text(rx, y0 + 87, "1 byte (1 of 256 centroids):", size=10)
    for i in range(12):
        svg.rect(rx + i * 10.8, y0 + 94, 9.4, 14, fill=PALETTE[i % len(PALETTE)], stroke=GREY, width=0.6)
    svg.text(rx + 65, y0 + 122, "48 B code (+ 4 B id)", size=9.5, anchor="middle")
    svg.text(rx, y0 + 144, "query: table of 48 x 256", size=10)
    svg.text(rx, y0 + 157, "partial scores, then each", size=10)
    svg.text(rx, y0 + 170, "code costs 48 lookups", size=10)
    caption(svg, "toy PQ: 2 sub-spaces x 4 centroids = 16 codes (blue); orange = error")
    caption(svg, "mean squared error of the toy codes: %.4f" % (err / len(res)), 1)
    return svg


def hnsw_build(pts, rng, M=3, ml=1 / math.log(3)):
    """Insert nodes one by one; on each layer <= its level, link to the M nearest nodes already on that layer
    (exact nearest here: the real build finds them with a beam search of width ef_construction)."""
    levels = [min(2, int(-math.log(1 - rng.random()) * ml)) for _ in pts]
    layers = [dict() for _ in range(3)]
    entry = None
    for i, lv in enumerate(levels):
        for l in range(lv + 1):
            nodes = list(layers[l].keys())
            near = sorted(nodes, key=lambda j: (d2(pts[i], pts[j]), j))[:M * (2 if l == 0 else 1)]
            layers[l][i] = set(near)
            for j in near:
                layers[l][j].add(i)
        if entry is None or lv > levels[entry]:
            entry = i
    return levels, layers, entry


def greedy(pts, layer, start, q):
    path = [start]
    cur = start
    while True:
        best = min(list(layer[cur]) + [cur], key=lambda j: (d2(pts[j], q), j))
        if best == cur:
            return path
        cur = best
        path.append(cur)


def fig_hnsw():
    rng = random.Random(7)
    pts = blobs(rng, 54)
    levels, layers, entry = hnsw_build(pts, rng)
    svg = Svg("HNSW: greedy descent through the layers", w=W, h=300)
    pw, ph, gap = 122, 196, 12
    x0s = [PAD - 8 + (2 - l) * (pw + gap) for l in range(3)]

    def descend(q):
        cur, out = entry, []
        for l in (2, 1, 0):
            path = greedy(pts, layers[l], cur, q)
            out.append((l, path))
            cur = path[-1]
        return out

    # the query: of a grid of candidates, one whose walk ends at its true nearest point after the most hops
    # (a schematic should show a walk, not an entry point that is already next to the query)
    best = None
    for gx in range(1, 10):
        for gy in range(1, 10):
            q = (gx / 10, gy / 10)
            walk = descend(q)
            ok = walk[-1][1][-1] == knn(pts, q, 1)[0]
            score = (ok, sum(len(p) - 1 for _, p in walk))
            if best is None or score > best[0]:
                best = (score, q, walk)
    _, query, paths = best
    for l in (2, 1, 0):
        x0, y0 = x0s[l], TOP + 16

        def px(p, x0=x0, y0=y0):
            return (x0 + 4 + p[0] * (pw - 8), y0 + 4 + (1 - p[1]) * (ph - 8))

        svg.rect(x0, y0, pw, ph, stroke="#cbd2d9")
        svg.text(x0 + pw / 2, y0 - 4, "layer %d (%d nodes)" % (l, len(layers[l])), size=10, anchor="middle")
        seen = set()
        for a, nb in sorted(layers[l].items()):
            for b in sorted(nb):
                if (b, a) in seen:
                    continue
                seen.add((a, b))
                p, q = px(pts[a]), px(pts[b])
                svg.line(p[0], p[1], q[0], q[1], color="#cbd2d9", width=0.7)
        for a in sorted(layers[l]):
            x, y = px(pts[a])
            svg.circle(x, y, 2.4, fill=GREY)
        path = dict(paths)[l]
        svg.polyline([px(pts[a]) for a in path], RED, 1.8)
        sx, sy = px(pts[path[0]])
        svg.circle(sx, sy, 3.6, fill=GREEN)
        ex, ey = px(pts[path[-1]])
        svg.circle(ex, ey, 3.6, fill=BLUE)
        svg.star(*px(query), r=5)
    true_nn = knn(pts, query, 1)[0]
    found = paths[-1][1][-1]
    hops = sum(len(p) - 1 for _, p in paths)
    svg.text(PAD, TOP + 16 + ph + 22, "green = where the walk enters a layer, blue = where it stops;", size=10.5)
    svg.text(PAD, TOP + 16 + ph + 36,
             "%d hops in all; stop on layer 0 is %s" % (hops, "the true nearest point" if found == true_nn
                                                          else "not the true nearest (ef widens the beam)"),
             size=10.5)
    svg.text(PAD, TOP + 16 + ph + 50, "real search: beam of ef candidates on layer 0, 2m links there", size=10.5)
    return svg


def fig_tiered():
    rng = random.Random(7)
    svg = Svg("Time-tiered: recent points in HNSW, old in IVF-PQ", w=W, h=220)
    # a synthetic write stream: arrival times over 40 "days"; seal every 50 points
    times = sorted(rng.uniform(0, 40) for _ in range(430))
    seal = 50
    segs = [times[i:i + seal] for i in range(0, len(times), seal)]
    growing = segs.pop() if len(segs[-1]) < seal else []
    now, hot_age = 40.0, 12.0
    cold = [s for s in segs if now - s[-1] > hot_age]
    hot = [s for s in segs if now - s[-1] <= hot_age]
    x0, x1, y = PAD, W - PAD, 84

    def tx(t):
        return x0 + t / now * (x1 - x0)

    svg.line(x0, y + 30, x1, y + 30, color=DARK)
    for d in range(0, 41, 10):
        svg.line(tx(d), y + 27, tx(d), y + 33, color=DARK)
        svg.text(tx(d), y + 45, "%d" % (d - 40) if d < 40 else "now", size=9.5, anchor="middle")
    svg.text((x0 + x1) / 2, y + 58, "time of the segment's points (days)", size=10, anchor="middle")
    # the cold segment: all cold segments rewritten together (migrate)
    if cold:
        a, b = tx(cold[0][0]), tx(cold[-1][-1])
        svg.rect(a, y - 30, b - a, 42, fill="#fed7aa", stroke=ORANGE)
        svg.text((a + b) / 2, y - 12, "1 cold segment", size=10, anchor="middle")
        svg.text((a + b) / 2, y + 2, "IVF-PQ, %d pts" % sum(len(s) for s in cold), size=10, anchor="middle")
    for s in hot:
        a, b = tx(s[0]), tx(s[-1])
        svg.rect(a, y - 30, b - a, 42, fill=LIGHT, stroke=BLUE)
        svg.text((a + b) / 2, y - 3, "HNSW", size=9, anchor="middle")
    if growing:
        a, b = tx(growing[0]), tx(now)
        svg.rect(a, y - 30, b - a, 42, fill="#e5e7eb", stroke=GREY, )
        svg.text((a + b) / 2, y - 3, "grow", size=9, anchor="middle")
    hx = tx(now - hot_age)
    svg.line(hx, y - 44, hx, y + 30, color=RED, dash="4,3", width=1.3)
    svg.text(hx, y - 47, "now - hot_age_secs", size=10, anchor="middle", color=RED)
    svg.text(PAD, 176, "%d points: %d in the cold tier, %d in %d hot HNSW segments," %
             (len(times), sum(len(s) for s in cold), sum(len(s) for s in hot), len(hot)), size=10.5)
    svg.text(PAD, 190, "%d in the growing segment (exact scan). A query searches all," % len(growing), size=10.5)
    svg.text(PAD, 204, "in parallel, and merges one top-k.", size=10.5)
    return svg


def fig_quant():
    rng = random.Random(7)
    svg = Svg("Bytes per 384-d vector: f32, SQ8, PQ, 1-bit", w=W, h=250)
    rows = [("f32", 384 * 4, "#e5e7eb", "384 x 4 B"),
            ("SQ8", 384 + 4, "#bfdbfe", "384 x 1 B + 4 B"),
            ("PQ m=48", 48, "#bbf7d0", "48 x 1 B"),
            ("1-bit", 384 // 8, "#fde68a", "384 bits")]
    scale = (W - 2 * PAD - 70) / 1536.0
    for i, (name, b, col, how) in enumerate(rows):
        y = 36 + i * 26
        svg.text(PAD, y + 12, name, size=11)
        svg.rect(PAD + 62, y, max(1.0, b * scale), 16, fill=col, stroke=GREY)
        svg.text(PAD + 66 + b * scale + (4 if b < 600 else -b * scale + 2), y + 12,
                 "%s B (%s)" % (format(b, ","), how), size=10)
    # one 8-d example, encoded for real
    v = [rng.gauss(0, 0.05) for _ in range(8)]
    lo, hi = -0.12, 0.12
    step = (hi - lo) / 255
    codes = [max(0, min(255, int(round((x - lo) / step)))) for x in v]
    bits = [1 if x >= 0 else 0 for x in v]
    y = 160
    svg.text(PAD, y - 8, "8 dims of one vector, encoded (range -0.12..0.12):", size=10.5)
    labels = ("f32", "SQ8", "bit")
    for r, lab in enumerate(labels):
        svg.text(PAD, y + 11 + r * 20, lab, size=10)
    for j in range(8):
        x = PAD + 34 + j * 44
        svg.rect(x, y, 40, 16, fill="#e5e7eb", stroke=GREY, width=0.6)
        svg.text(x + 20, y + 12, "%+.3f" % v[j], size=9, anchor="middle")
        svg.rect(x, y + 20, 40, 16, fill="#bfdbfe", stroke=GREY, width=0.6)
        svg.text(x + 20, y + 32, "%d" % codes[j], size=9, anchor="middle")
        svg.rect(x, y + 40, 40, 16, fill="#fde68a", stroke=GREY, width=0.6)
        svg.text(x + 20, y + 52, "%d" % bits[j], size=9, anchor="middle")
    return svg


def fig_filtered():
    rng = random.Random(7)
    pts = blobs(rng, 60)
    # a 3-NN graph (symmetrised) stands in for a proximity graph
    adj = {i: set() for i in range(len(pts))}
    for i in range(len(pts)):
        for j in knn(pts, pts[i], 4)[1:]:
            adj[i].add(j)
            adj[j].add(i)
    admitted = set(i for i in range(len(pts)) if rng.random() < 0.25)
    # connected components of the admitted sub-graph (what a walk restricted to admitted nodes can reach)
    comp, ncomp = {}, 0
    for s in sorted(admitted):
        if s in comp:
            continue
        stack = [s]
        comp[s] = ncomp
        while stack:
            a = stack.pop()
            for b in adj[a]:
                if b in admitted and b not in comp:
                    comp[b] = ncomp
                    stack.append(b)
        ncomp += 1
    svg = Svg("Filtered search on a graph")
    panel(svg)
    for a in sorted(adj):
        for b in sorted(adj[a]):
            if a < b:
                pa, pb = to_px(pts[a]), to_px(pts[b])
                both = a in admitted and b in admitted
                svg.line(pa[0], pa[1], pb[0], pb[1], color=BLUE if both else "#e5e7eb", width=1.4 if both else 0.8)
    for i, p in enumerate(pts):
        x, y = to_px(p)
        svg.circle(x, y, 3.4 if i in admitted else 2.4, fill=BLUE if i in admitted else "#cbd2d9")
    svg.star(*to_px(QUERY))
    caption(svg, "%d of %d points match the filter (blue); linked only to each other" % (len(admitted), len(pts)))
    caption(svg, "they form %d separate pieces: a walk on them alone gets stuck" % ncomp, 1)
    return svg


FIGURES = [
    ("flat.svg", fig_flat),
    ("kdtree.svg", fig_kdtree),
    ("lsh.svg", fig_lsh),
    ("kd-lsh.svg", fig_kdlsh),
    ("ivf.svg", fig_ivf),
    ("ivf-pq.svg", fig_ivfpq),
    ("hnsw.svg", fig_hnsw),
    ("tiered.svg", fig_tiered),
    ("quantization.svg", fig_quant),
    ("filtered.svg", fig_filtered),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join("docs", "figures"), help="output directory (default docs/figures)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, fn in FIGURES:
        data = fn().render()
        path = os.path.join(args.out, name)
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(data)
        print("%-18s %6d bytes" % (path, len(data.encode("utf-8"))))


if __name__ == "__main__":
    main()

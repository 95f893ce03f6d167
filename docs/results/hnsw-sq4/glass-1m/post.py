# QPS at recall of QuiverDB (in-process A/B, mean of the two copies of each variant) beside glass (best of its two
# searchers, SQ8U and SQ8U+FP32), linear interpolation between measured points.
import re, json
cur = {}
for l in open('quiver_ab_1m.txt'):
    m = re.match(r"ef\s+(\d+)\s+(\S+) rec ([\d.]+) qps\s+(\d+)", l)
    if m:
        cur.setdefault((m.group(2), int(m.group(1))), []).append((float(m.group(3)), float(m.group(4))))
def curve(v):
    return sorted({ef: (sum(r for r, _ in x) / len(x), sum(q for _, q in x) / len(x)) for (vv, ef), x in cur.items() if vv == v}.values())
def at(c, t):
    for (r0, q0), (r1, q1) in zip(c, c[1:]):
        if r0 <= t <= r1 and r1 > r0:
            return q0 + (q1 - q0) * (t - r0) / (r1 - r0)
rows = json.load(open('peers.json'))['rows']
g1 = sorted((r['recall10'], r['qps']) for r in rows if 'FP32' not in r['params'])
g2 = sorted((r['recall10'], r['qps']) for r in rows if 'FP32' in r['params'])
s8, s4 = curve('sq8:0:4:4'), curve('sq4:0.01:4:4')
for t in (0.90, 0.95, 0.97, 0.98, 0.99, 0.995):
    g = max([x for x in (at(g1, t), at(g2, t)) if x], default=None)
    a, b = at(s8, t), at(s4, t)
    print(t, 'sq8', a and round(a), 'sq4', b and round(b), 'glass', g and round(g), 'sq4/glass', b and g and round(b / g, 2))

import re,json
cur={}
for l in open('/tmp/run6/quiver_ab_1m.txt'):
    m=re.match(r"ef\s+(\d+)\s+(\S+) rec ([\d.]+) qps\s+(\d+)",l)
    if m: cur.setdefault((m.group(2),int(m.group(1))),[]).append((float(m.group(3)),float(m.group(4))))
def curve(v):
    return sorted({(ef):(sum(r for r,_ in x)/len(x), sum(q for _,q in x)/len(x)) for (vv,ef),x in cur.items() if vv==v}.values())
def at(c,t):
    p=sorted(c)
    for (r0,q0),(r1,q1) in zip(p,p[1:]):
        if r0<=t<=r1 and r1>r0: return q0+(q1-q0)*(t-r0)/(r1-r0)
p=json.load(open('/tmp/run6/peers.json'))
hl=[(r['recall10'],r['qps']) for r in p['rows']]
print([ (r['params'], r['recall10'], round(r['qps']), r.get('build_s'), r.get('mem_mb')) for r in p['rows']][:3])
s8=curve('sq8:0:4:4'); s4=curve('sq4:0.01:4:4')
for t in (0.90,0.95,0.97,0.98,0.99,0.995):
    a,b,c=at(s8,t),at(s4,t),at(hl,t)
    print(t, a and round(a), b and round(b), c and round(c), b and c and round(b/c,2), a and c and round(a/c,2))

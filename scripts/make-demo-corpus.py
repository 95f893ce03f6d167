#!/usr/bin/env python3
"""Builds crates/quiver-cli/demo/wordnet-demo.jsonl, the corpus `quiver demo` ships with.

Source: the WordNet 3.0 noun database (Princeton University; Debian package `wordnet-base`, files
/usr/share/wordnet/data.noun), under the WordNet 3.0 license (see crates/quiver-cli/demo/README.md). Each line of
the output is one synset of one of eight lexicographer files, as
    {"id": N, "topic": "...", "lemma": "...", "text": "lemma, other lemma: gloss"}
with at most PER_TOPIC synsets per topic, picked with a fixed seed (the output is the same on every run), glosses
without their example sentences (the quoted parts after ';'), underscores as spaces.

    apt-get install -y wordnet-base && python3 scripts/make-demo-corpus.py
"""
import json
import random
import sys
from pathlib import Path

DATA = Path("/usr/share/wordnet/data.noun")
OUT = Path(__file__).resolve().parent.parent / "crates/quiver-cli/demo/wordnet-demo.jsonl"
PER_TOPIC = 250
SEED = 20261123
# Lexicographer file numbers (WordNet's lexnames) → the demo's topic names.
TOPICS = {
    5: "animal",      # noun.animal
    6: "artifact",    # noun.artifact
    8: "body",        # noun.body
    12: "feeling",    # noun.feeling
    13: "food",       # noun.food
    15: "place",      # noun.location
    19: "nature",     # noun.phenomenon (weather, light, natural forces)
    20: "plant",      # noun.plant
}


def synsets():
    for line in DATA.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(" ") or " | " not in line:
            continue  # the license header
        head, gloss = line.split(" | ", 1)
        fields = head.split()
        lexfile = int(fields[1])
        if lexfile not in TOPICS:
            continue
        n = int(fields[3], 16)
        lemmas = [fields[4 + 2 * i].replace("_", " ") for i in range(n)]
        # Drop example sentences: `gloss; "example"`.
        gloss = gloss.strip().split('; "')[0].strip().rstrip(";").strip()
        if len(gloss.split()) < 4:
            continue
        yield TOPICS[lexfile], lemmas, gloss


def main():
    if not DATA.exists():
        sys.exit(f"{DATA} missing: apt-get install -y wordnet-base")
    by_topic = {}
    for topic, lemmas, gloss in synsets():
        by_topic.setdefault(topic, []).append((lemmas, gloss))
    rng = random.Random(SEED)
    rows = []
    for topic in sorted(by_topic):
        items = by_topic[topic]
        picked = sorted(rng.sample(range(len(items)), min(PER_TOPIC, len(items))))
        for i in picked:
            lemmas, gloss = items[i]
            rows.append({"topic": topic, "lemma": lemmas[0], "text": f"{', '.join(lemmas[:3])}: {gloss}"})
    rng.shuffle(rows)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as f:
        for i, r in enumerate(rows):
            f.write(json.dumps({"id": i, **r}, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} texts in {len(by_topic)} topics to {OUT}")


if __name__ == "__main__":
    main()

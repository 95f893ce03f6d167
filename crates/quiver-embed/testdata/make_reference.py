#!/usr/bin/env python3
"""Reference embeddings for quiver-embed's tests, computed with the Python sentence-transformers package.

    python3 -m venv /tmp/st && /tmp/st/bin/pip install sentence-transformers   # torch from PyPI: a large download
    /tmp/st/bin/python crates/quiver-embed/testdata/make_reference.py --model ~/.cache/quiver-models/all-MiniLM-L6-v2
    /tmp/st/bin/python crates/quiver-embed/testdata/make_reference.py --model ~/.cache/quiver-models/all-mpnet-base-v2

writes crates/quiver-embed/testdata/reference_<model>.json: the sentences, the token ids the model's
tokenizer gives them (truncated to the model's max_seq_length), and their embeddings (mean pooling + normalisation,
as the model directory's modules.json says), with the versions that made them; for an MPNet model also the relative-position bucket of every relative position
in -520..520, from transformers' own bucketing function. The tests compare quiver-embed's
vectors with these (cosine >= 0.9999) and its token ids with these (equal).
"""
import argparse
import json
import os

SENTENCES = [
    "A man is eating food.",
    "word",
    "",
    "The quick brown fox jumps over the lazy dog; the dog doesn't care.",
    "Café crème brûlée — naïve façade, Ångström, résumé.",
    "我爱自然语言处理。东京是日本的首都。",
    "Я люблю машинное обучение и векторные базы данных.",
    "Η γρήγορη καφέ αλεπού πηδά πάνω από τον τεμπέλη σκύλο.",
    "مرحبا بالعالم، هذا اختبار للنص العربي.",
    "I ❤️ 🦀 Rust and 🐍 Python!!! 😀",
    "  multiple   spaces\tand\ttabs\nand\nnewlines  ",
    "fn main() { println!(\"{}\", 2 + 2); } // prints 4",
    "a domesticated carnivorous mammal (Felis catus) with soft fur and retractable claws",
    "HNSW builds a navigable small-world graph in layers; IVF partitions vectors into k-means cells.",
    "In 2024, the price rose 12.5% to $1,234.56 (see p. 7, fig. 3b).",
    # Longer than the model's max_seq_length (256 tokens): only its head is read.
    " ".join(
        f"Sentence number {i} of a long document about vector databases, embeddings and approximate search."
        for i in range(60)
    ),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="model directory (config.json, tokenizer.json, model.safetensors)")
    ap.add_argument("--out", help="default: reference_<model directory name>.json beside this script")
    args = ap.parse_args()
    name = os.path.basename(os.path.normpath(args.model))
    if args.out is None:
        args.out = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"reference_{name}.json")

    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(args.model, device="cpu")
    vectors = model.encode(SENTENCES, batch_size=32, convert_to_numpy=True)
    tok = model.tokenizer
    ids = [tok(s, truncation=True, max_length=model.max_seq_length)["input_ids"] for s in SENTENCES]
    out = {
        "model": name,
        "made_with": {
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        },
        "max_seq_length": model.max_seq_length,
        "dim": int(vectors.shape[1]),
        "items": [
            {"text": s, "token_ids": i, "vector": [float(f"{x:.7g}") for x in v.tolist()]}
            for s, i, v in zip(SENTENCES, ids, vectors)
        ],
    }
    if model[0].auto_model.config.model_type == "mpnet":
        from transformers.models.mpnet.modeling_mpnet import MPNetEncoder

        relative = torch.arange(-520, 521, dtype=torch.long)
        buckets = MPNetEncoder.relative_position_bucket(relative, num_buckets=32)
        out["relative_buckets"] = {"relative": relative.tolist(), "bucket": buckets.tolist()}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=None)
        f.write("\n")
    print(f"wrote {len(SENTENCES)} vectors of dim {out['dim']} to {args.out}")


if __name__ == "__main__":
    main()

"""The text_edits correction model: WER of the machine output before and after correction, on held-out texts.

    python benchmarks/text_edits_model.py                 # 5 seeds, 300 texts each (train 70%, val 15%, test 15%)
    python benchmarks/text_edits_model.py --seeds 2 --texts 100

Texts are four demo phrases each (``core.speech.synth.PHRASES``). Two machines: ``random``, the demo's
(``crowd.machine_output``: words dropped, swapped, misspelled at random), and ``systematic``, the same plus what a
real ASR or MT system repeats, every time (``machine_output(..., systematic=1.0)``, the table ``crowd.CONFUSIONS``):
Vietnamese tone marks dropped on ten frequent words (``không`` -> ``khong``), English homophones ("the" heard as
"da", "know" as "no", ...) and literal term translations ("weather" as "sky"). The crowd (two careful correctors and a lazy one, ``core.speech.crowd``)
corrects every text; the model (``text_edits.trainer``) trains on the train split's consensus (``labeler_aware_rover``)
with val checking its rules, and is scored on the test split against the truth.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from labeling_assets.core.speech.crowd import TextLabeler, careful_text_labeler, machine_output
from labeling_assets.core.speech.synth import PHRASES
from labeling_assets.core.speech.text_metrics import wer
from labeling_assets.core.tasks import task_kind

KIND = task_kind("text_edits")


def run(seed: int, n_texts: int, machine: str, folder: Path) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    phrases = [p for lang in PHRASES.values() for p, _ in lang]
    crowd = [careful_text_labeler("ann", rng), careful_text_labeler("bob", rng), TextLabeler("lazy", lazy=True)]
    truth, rows, votes = {}, [], []
    for n in range(n_texts):
        said = " ".join(str(p) for p in rng.choice(phrases, size=4)).split()
        heard = machine_output(said, rng, systematic=1.0 if machine == "systematic" else 0.0)
        item = f"{machine}{seed}_{n:04d}"
        path = folder / f"{item}.edit.json"
        path.write_text(json.dumps({"id": item, "machine": " ".join(heard), "source": None, "audio_item_id": None,
                                    "audio_uri": None}), encoding="utf-8")  # fmt: skip
        truth[item] = " ".join(said)
        rows.append({"item_id": item, "uri": str(path)})
        votes += [{"item_id": item, "labeler_id": who.name, "uri": str(path),
                   "label": " ".join(who.correct(said, heard, rng))} for who in crowd]  # fmt: skip
    consensus = KIND.consensus(pd.DataFrame(votes), "auto", [], pd.Series(dtype=object)).result.labels
    frame = pd.DataFrame(rows).merge(consensus[["item_id", "label"]], on="item_id")
    order = rng.permutation(len(frame))
    cut = [int(0.7 * len(frame)), int(0.85 * len(frame))]
    train, val, test = (frame.iloc[order[a:b]] for a, b in ((0, cut[0]), (cut[0], cut[1]), (cut[1], len(frame))))
    trainer = KIND.trainer
    assert trainer is not None
    fitted = trainer.fit(train, val, [], {})
    outputs, _ = trainer.predict(fitted, test["uri"].tolist())
    refs = [truth[i].split() for i in test["item_id"]]
    return {"rules": float(len(fitted.model.rules)),
            "before": wer(refs, [o["machine"].split() for o in outputs]),
            "after": wer(refs, [o["text"].split() for o in outputs])}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--texts", type=int, default=300)
    args = parser.parse_args()
    print(f"{args.texts} texts per seed, {args.seeds} seeds; test WER against the truth (mean ± sd over seeds)")
    print("| machine | rules learnt | WER before correction | WER after |")
    print("|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for machine in ("random", "systematic"):
            found = [run(seed, args.texts, machine, Path(tmp)) for seed in range(args.seeds)]
            cell = {k: (np.mean([f[k] for f in found]), np.std([f[k] for f in found])) for k in found[0]}
            print(f"| {machine} | {cell['rules'][0]:.1f} | {cell['before'][0]:.4f} ± {cell['before'][1]:.4f} | "
                  f"{cell['after'][0]:.4f} ± {cell['after'][1]:.4f} |")


if __name__ == "__main__":
    main()

"""A real writer process for the kill / concurrency tests (run as a script, not imported).

usage: _store_writer.py STORE N_SLIDES [--pause-after SLIDE] [--ready DIR --peers K]
       [--sleep SECONDS] [--report FILE]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _store_rows import ENCODER, patient_of, slide_coords, slide_ids, slide_vectors  # noqa: E402

from pmx.featurestore import open_store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("n", type=int)
    parser.add_argument("--pause-after", default=None)
    parser.add_argument("--ready", default=None)
    parser.add_argument("--peers", type=int, default=1)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--report", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)

    store = open_store(args.store)
    if args.ready:  # start together with the other writers
        ready = Path(args.ready)
        (ready / f"{__import__('os').getpid()}").touch()
        while len(list(ready.iterdir())) < args.peers:
            time.sleep(0.01)
    slides = slide_ids(args.n)
    if args.ready:  # concurrent upserts of the same keys from every writer
        for _ in range(3):
            store.upsert("patients", [{"patient_id": patient_of(s), "time": 0.0, "event": False}
                                      for s in slides])
    mine = []
    with store.stage("embed", fingerprint=ENCODER, params={"dim": 16}, units=slides) as stage:
        for slide in stage.pending():
            patient = patient_of(slide)
            store.upsert("patients", [{"patient_id": patient, "time": float(int(patient[1:]) + 1),
                                       "event": int(patient[1:]) % 2 == 0}])
            rows = store.write_embeddings(ENCODER, slide, slide_vectors(slide),
                                          coords=slide_coords(), patient_id=patient, tiler="grid")
            if args.sleep:
                time.sleep(args.sleep)
            if slide == args.pause_after:
                print(f"written {slide}", flush=True)
                time.sleep(3600)  # the test SIGKILLs us here: rows committed, unit not recorded
            stage.done(slide, rows=rows)
            mine.append(slide)
            print(f"done {slide}", flush=True)
    if args.report:
        Path(args.report).write_text("\n".join(mine))
    print("finished", flush=True)


if __name__ == "__main__":
    main()

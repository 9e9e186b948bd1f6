"""Time to ingest the ImageNet testbed's whole table (338 models x 213 settings, with its metadata of test-set
sizes and its model-type list) into tidy Tables; target <= 2 s. Also times the other published formats.

Usage: ROBSTUDY_REFERENCE=/path/to/reference-results python benchmarks/ingest.py [repeats]
"""
import statistics, sys, time, warnings

import os
from pathlib import Path

from robstudy.ingest import read_linefit_json, read_qa, read_robustbench, read_robustbench_corruptions, read_testbed, read_timm


def reference_dir():
    "The released tables: $ROBSTUDY_REFERENCE, else ../shared/reference-results beside the repository (a development checkout)."
    for cand in (os.environ.get("ROBSTUDY_REFERENCE"), Path(__file__).resolve().parents[2] / "shared" / "reference-results"):
        if cand and Path(cand).is_dir(): return Path(cand)
    return None


def best_and_median(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter(); out = fn(); times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), out


def main(repeats: int = 5):
    ref = reference_dir()
    if ref is None: sys.exit("no reference-results folder: set ROBSTUDY_REFERENCE")
    d = ref/"imagenet_testbed"
    best, med, t = best_and_median(lambda: read_testbed(d/"robustness_top1s.csv", d/"website_results_metadata.csv", d/"model_types.csv"), repeats)
    print(f"testbed ingest ({len(t.models)} models x {len(t.settings)} settings, {len(t.evals)} evaluations, with n and model types): "
          f"median {med:.3f} s, best {best:.3f} s over {repeats} runs (target <= 2 s)")
    others = {"timm (8 files, 1557 models)": lambda: read_timm(ref/"timm", metadata=ref/"timm/model_metadata-in1k.csv"),
              "robustbench model_info_flat.csv": lambda: read_robustbench(ref/"robustbench/model_info_flat.csv"),
              "robustbench cifar10 unaggregated": lambda: read_robustbench_corruptions(ref/"robustbench/cifar10_corruptions_unaggregated_results.csv"),
              "qa final_avg + annotations": lambda: read_qa(ref/"awadalla_qa/extractive_question_answering_final_avg.csv", annotations=ref/"awadalla_qa/annotated_data.csv"),
              "linefit ycb_100ktrain": lambda: read_linefit_json(ref/"linearfits_app/ycb_100ktrain_evals.json")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, fn in others.items():
            best, med, t = best_and_median(fn, repeats)
            print(f"{name}: {len(t.evals)} evaluations, median {med:.3f} s, best {best:.3f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)

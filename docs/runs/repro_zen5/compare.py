"""Rows of the Zen 5 reruns against the committed ones: which differ (val, test, train
loss). python docs/runs/repro_zen5/compare.py > docs/runs/repro_zen5/compare.log"""
import csv
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
G = os.path.join(HERE, "..", "generalisation")


def rows(path):
    return {(r["loss"], r["noise"], r["seed"]): r for r in csv.DictReader(open(path))}


def compare(name, new, old, rename=None):
    a, b = rows(old), rows(new)
    same = diff = 0
    worst = 0.0
    for k, r in b.items():
        loss = (rename or {}).get(k[0], k[0])
        if loss is None:  # a name that means another loss in the committed cell
            continue
        o = a[loss, k[1], k[2]]
        if all(r[f] == o[f] for f in ("val_acc", "test_acc", "train_loss")):
            same += 1
        else:
            diff += 1
            worst = max(worst, abs(float(r["test_acc"]) - float(o["test_acc"])))
    print(f"{name}: {same} rows equal, {diff} differ (largest test gap {100 * worst:.2f})")


compare("MLP, digits T2, Zen 5 now against the committed grid (AVX-512 EPYC)",
        f"{HERE}/digits_T2_mlp_head.csv", f"{G}/grid/digits_T2/runs.csv",
        {"arl[docs/runs/generalisation/search]": "arl[runs/gen_search]", "arl": None})
compare("MLP, MNIST 1,000 labels T2, Zen 5 now against the same CPU before the "
        "evaluation change", f"{HERE}/mnist_T2_n1000_head.csv",
        f"{G}/size_check/mnist_T2_n1000/runs.csv")
compare("CNN, digits T2, Zen 5 now against the same CPU before the evaluation change",
        f"{HERE}/digits_cnn_T2_head.csv", f"{HERE}/digits_cnn_T2_before.csv")
compare("CNN, digits T2, Zen 5 now against the committed cell (AVX-512 EPYC)",
        f"{HERE}/digits_cnn_T2_head.csv", f"{G}/arch_size/digits_cnn_T2/runs.csv")
before = [json.loads(x) for x in open(f"{HERE}/demo_gen1_before.jsonl")]
head = [json.loads(x) for x in open(f"{HERE}/demo_gen1_head.jsonl")]
strip = [{k: v for k, v in r.items() if k != "elapsed_s"} for r in before + head]
print("make demo's first generation before and after the evaluation change: "
      + ("equal" if strip[: len(before)] == strip[len(before):] else "differ"))

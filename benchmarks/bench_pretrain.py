"""Pretraining throughput: our Keras trainer against Hugging Face BertForPreTraining on PyTorch.

    .venv/bin/python benchmarks/bench_pretrain.py [--repeats 3] [--steps 30]

bert_tiny and bert_mini, global batch 32, seq 128, 20 predictions, MLM+NSP,
fp32, on this CPU. Ours is model.training.engine's real train step over a real
dataset (the lead sections through our pipeline, uncased vocab, 30,522);
the peer is transformers' BertForPreTraining with a plain AdamW loop,
gathering the masked positions before the vocabulary projection (as
keras-hub's MaskedLMHead does; the stock labels= path projects all 128
positions and is ~3x slower, shared/MEASURED.md). torch and transformers
live in .venv-bench (`make bench` creates it), never in the product's
requirements. Each measurement is its own process, ours and the peer's
interleaved; medians are reported. Also: the input pipeline alone, model
FLOP/s, and the fraction of a measured fp32 matmul peak.
Writes benchmarks/results/pretrain.json.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = {"bert_tiny": (2, 128, 2, 512), "bert_mini": (4, 256, 4, 1024)}
BATCH, SEQ, PRED, VOCAB = 32, 128, 20, 30522


def train_flops_per_sequence(size: str) -> float:
    """Forward+backward FLOPs of one sequence (3x forward; matmuls and attention)."""
    layers, hidden, _, inter = SIZES[size]
    per_layer = 2 * SEQ * (4 * hidden * hidden + 2 * hidden * inter) + 4 * SEQ * SEQ * hidden
    mlm = PRED * (2 * hidden * hidden + 2 * hidden * VOCAB)
    return 3.0 * (layers * per_layer + mlm + 2 * hidden * hidden)


# -- workers (each runs in its own process) ----------------------------------

def ours(size: str, steps: int, dataset: str) -> dict:
    sys.path.insert(0, ROOT)
    from model.training.optimization import OptimizerConfig
    from model.training.pretraining_run import PretrainConfig, Pretrainer

    out = tempfile.mkdtemp()
    trainer = Pretrainer(PretrainConfig(input_file=dataset, output_dir=out, preset=size,
                                  train_batch_size=BATCH, optimizer=OptimizerConfig(
                                      num_train_steps=10**6, num_warmup_steps=100)))
    step = trainer.engine._train_step_fn(trainer.task)
    iterator = iter(trainer._dataset(trainer.source, BATCH, True))
    for _ in range(3):
        float(step(iterator)["loss"])
    start = time.perf_counter()
    for _ in range(steps):
        loss = step(iterator)["loss"]
    float(loss)
    seconds = time.perf_counter() - start
    shutil.rmtree(out, ignore_errors=True)
    return {"sequences_per_s": steps * BATCH / seconds}


def input_pipeline(dataset: str, batches: int) -> dict:
    sys.path.insert(0, ROOT)
    from tfrecords.reader import make_dataset

    it = iter(make_dataset(dataset, global_batch_size=BATCH))
    for _ in range(5):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return {"sequences_per_s": batches * BATCH / (time.perf_counter() - start)}


def matmul_peak() -> dict:
    import tensorflow as tf

    a = tf.random.normal((2048, 2048))
    b = tf.random.normal((2048, 2048))
    (a @ b).numpy()
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        (a @ b).numpy()
        runs.append(2 * 2048 ** 3 / (time.perf_counter() - start))
    return {"flops": statistics.median(runs)}


def torch_peer(size: str, steps: int) -> dict:
    import torch
    from transformers import BertConfig, BertForPreTraining

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    layers, hidden, heads, inter = SIZES[size]
    model = BertForPreTraining(BertConfig(
        vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=inter, max_position_embeddings=512))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    ids = torch.randint(1000, VOCAB, (BATCH, SEQ))
    mask = torch.ones(BATCH, SEQ, dtype=torch.long)
    segments = torch.cat([torch.zeros(BATCH, SEQ // 2), torch.ones(BATCH, SEQ // 2)], 1).long()
    positions = torch.stack([torch.randperm(SEQ - 2)[:PRED] + 1 for _ in range(BATCH)])
    labels = torch.gather(ids, 1, positions)
    nsp = torch.randint(0, 2, (BATCH,))

    def step():
        encoded = model.bert(input_ids=ids, attention_mask=mask, token_type_ids=segments)
        sequence, pooled = encoded[0], encoded[1]
        gathered = torch.gather(sequence, 1, positions.unsqueeze(-1).expand(-1, -1, hidden))
        logits = model.cls.predictions(gathered)
        nsp_logits = model.cls.seq_relationship(pooled)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), labels.reshape(-1)) \
            + torch.nn.functional.cross_entropy(nsp_logits, nsp)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return {"sequences_per_s": steps * BATCH / (time.perf_counter() - start)}


# -- driver ---------------------------------------------------------------------

def run_worker(python, *args) -> dict:
    proc = subprocess.run([python, os.path.abspath(__file__), "--worker", *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    if proc.returncode != 0:
        raise RuntimeError(f"{args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def make_benchmark_dataset(work: str) -> str:
    out = os.path.join(work, "dataset")
    subprocess.run([sys.executable, "-m", "pipeline.create_pretraining_data",
                    f"--input_file=jsonl:{ROOT}/data/wiki_leads/leads.jsonl",
                    f"--vocab_file={ROOT}/data/vocab/uncased_vocab.txt", f"--output_dir={out}",
                    "--max_seq_length=128", "--max_predictions_per_seq=20", "--dupe_factor=1",
                    "--num_shards=4"], cwd=ROOT, check=True, capture_output=True,
                   env=dict(os.environ, PYTHONPATH=ROOT))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", nargs="*")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--bench_python", default=os.path.join(ROOT, ".venv-bench", "bin", "python"))
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        result = {"ours": lambda: ours(rest[0], int(rest[1]), rest[2]),
                  "torch": lambda: torch_peer(rest[0], int(rest[1])),
                  "input": lambda: input_pipeline(rest[0], int(rest[1])),
                  "matmul": matmul_peak}[kind]()
        print(json.dumps(result))
        return
    if not os.path.exists(args.bench_python):
        sys.exit(f"{args.bench_python} is missing: make bench creates .venv-bench "
                 "(torch==2.13.0, transformers)")
    work = tempfile.mkdtemp(prefix="bench_pretrain_")
    dataset = make_benchmark_dataset(work)
    results = {"load_average_at_start": os.getloadavg(), "batch": BATCH, "seq": SEQ,
               "predictions": PRED, "vocab": VOCAB, "sizes": {}}
    peak = statistics.median(run_worker(sys.executable, "matmul")["flops"] for _ in range(3))
    results["matmul_peak_gflops"] = peak / 1e9
    for size in SIZES:
        runs = {"ours": [], "torch": []}
        for _ in range(args.repeats):
            runs["ours"].append(run_worker(sys.executable, "ours", size, args.steps, dataset)
                                ["sequences_per_s"])
            runs["torch"].append(run_worker(args.bench_python, "torch", size, args.steps)
                                 ["sequences_per_s"])
        ours_sps, torch_sps = statistics.median(runs["ours"]), statistics.median(runs["torch"])
        flops = train_flops_per_sequence(size) * ours_sps
        results["sizes"][size] = {
            "ours_sequences_per_s": ours_sps, "torch_sequences_per_s": torch_sps,
            "ratio": ours_sps / torch_sps, "ours_gflops": flops / 1e9,
            "fraction_of_matmul_peak": flops / peak, "runs": runs}
        print(f"{size}: ours {ours_sps:.1f} seq/s, PyTorch {torch_sps:.1f} seq/s, "
              f"ratio {ours_sps / torch_sps:.2f}x; ours {flops / 1e9:.1f} GFLOP/s = "
              f"{flops / peak:.0%} of the {peak / 1e9:.0f} GFLOP/s fp32 matmul peak", flush=True)
    pipe = statistics.median(run_worker(sys.executable, "input", dataset, 300)["sequences_per_s"]
                             for _ in range(3))
    tiny = results["sizes"]["bert_tiny"]["ours_sequences_per_s"]
    results["input_pipeline_sequences_per_s"] = pipe
    results["input_pipeline_over_bert_tiny"] = pipe / tiny
    print(f"input pipeline alone: {pipe:,.0f} seq/s = {pipe / tiny:.0f}x what bert_tiny consumes")
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "benchmarks", "results", "pretrain.json"), "w") as f:
        json.dump(results, f, indent=2)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

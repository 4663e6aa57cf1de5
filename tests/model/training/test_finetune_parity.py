"""Fine-tuning step for step against Hugging Face transformers, every task family.

benchmarks/finetune_parity.py trains the real all-MiniLM-L6-v2 20 steps with our
Finetuner (dropout 0, float32) and hands the exact batches our input pipeline produced,
and our head's initial weights, to transformers' class for the family, trained by the
loop of transformers' Trainer (torch AdamW, linear warmup and decay, clip_grad_norm_)
in .venv-bench. Both sides compute the same function in float32; what may differ is
the order of every sum (oneDNN's and PyTorch's kernels, the loss's reduction).

The tolerance, from float32's unit round-off u = 2**-24: a sum of m terms taken in two
orders differs by at most 2(m-1)u of the sum of its terms' magnitudes (Higham,
"Accuracy and Stability of Numerical Algorithms", 4.2). The widest sum of a step is
over the batch's tokens (a weight's gradient, the loss) or over the feed-forward layer's
1,536 inputs, so with m the larger of the two, one step's loss and gradient differ by at
most 2mu of themselves; each later step adds as much again (Adam turns a gradient's
relative error into at most that relative error of the step, for every weight whose
gradient is well above epsilon; the weights whose gradient is rounding noise are left
out, see shift_invariant()). So at step k: |ours - peer| <= 2kmu of the peer's figure,
for the loss, the gradient norm before the clip, and the update of the weights after 20
steps (in norm over all of them). With m = 1,536, 20 steps: 3.7e-3. Measured on a 2-core
AVX2 AMD EPYC: at most 1.1e-5 (NER), 6e-5 (SQuAD) for the loss, an update difference of
5e-5 to 9e-5 (7e-3 for SQuAD with its head's bias, which is shift invariant: now out).
Keras' own AdamW, whose epsilon sits before the bias correction (model/training/optimization.py),
was up to 9.4e-2 (NER) and 1.8e-2 (classification) apart within 20 steps, 5x to 25x
the bound.
"""

import numpy as np
import pytest

from tests.conftest import ROOT

DATA = ROOT / "data"
U = 2.0 ** -24
STEPS = 20

pytestmark = [
    pytest.mark.data,
    pytest.mark.skipif(not (DATA / "minilm" / "model.safetensors").exists(),
                       reason="needs the sample data (make data)"),
]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("parity")  # the imported MiniLM, shared by the families


@pytest.mark.parametrize("family", ["classification", "pair", "regression", "ner", "squad",
                                    "multiple_choice"])
def test_each_step_matches_transformers(family, work, bench_python):
    from benchmarks.finetune_parity import compare, summary

    r = compare(family, str(work), steps=STEPS)
    bound = 2 * np.arange(1, STEPS + 1) * r["widest_reduction"] * U
    for what in ("loss", "grad_norm"):
        ours, peer = np.array(r[f"ours_{what}"]), np.array(r[f"peer_{what}"])
        assert len(ours) == len(peer) == STEPS, (what, len(ours), len(peer))
        relative = np.abs(ours - peer) / np.abs(peer)
        assert (relative <= bound).all(), (
            f"{family}: {what} apart at steps {np.flatnonzero(relative > bound) + 1}: "
            f"{relative.max():.2e} > bound; {summary(r)}")
    # The schedule counts steps as transformers' does. Ours logs the rate after the step
    # (the next step's, as the Trainer's log does); the peer recorded the rate it used.
    np.testing.assert_allclose(r["ours_learning_rate"][:-1], r["peer_learning_rate"][1:],
                               rtol=1e-6)
    assert r["peer_learning_rate"][0] == 0.0  # the warmup starts at 0 on both sides
    assert r["update_difference"] <= bound[-1], summary(r)
    # The loss moved: two runs that learn nothing would also agree.
    assert r["ours_loss"][-1] < r["ours_loss"][0], summary(r)

"""Training on packed datasets: attention within documents, positions restarting per document."""

import numpy as np

from model.networks.encoder import BertEncoder
from model.networks.model_dir import open_model_dir
from model.tasks import load_model
from model.tasks.pretraining import restarted_positions
from model.training.optimization import OptimizerConfig
from model.training.pretraining_run import PretrainConfig, Pretrainer
from tests.model.conftest import TINY, make_dataset_dir


def _encode(encoder, ids, document_ids=None, position_ids=None):
    x = {"token_ids": ids, "segment_ids": np.zeros_like(ids),
         "padding_mask": (ids > 0).astype(np.int32)}
    if document_ids is not None:
        x["document_ids"] = document_ids
    if position_ids is not None:
        x["position_ids"] = position_ids
    return encoder(x, training=False)["sequence_output"].numpy()


def test_a_document_does_not_see_the_other_documents_of_its_sequence():
    encoder = BertEncoder(vocabulary_size=60, num_layers=2, num_heads=2, hidden_dim=16,
                          intermediate_dim=32)
    ids = np.array([[2, 10, 11, 12, 3, 20, 21, 22, 3, 30, 31, 0, 0]], np.int32)
    docs = np.array([[1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 0, 0]], np.int32)
    other = ids.copy()
    other[0, 5:8] = [40, 41, 42]  # document 2's words changed
    doc1, doc2 = slice(0, 5), slice(5, 9)
    packed = _encode(encoder, ids, docs), _encode(encoder, other, docs)
    assert np.abs(packed[0][0, doc1] - packed[1][0, doc1]).max() == 0.0
    assert np.abs(packed[0][0, 9:11] - packed[1][0, 9:11]).max() == 0.0  # document 3 too
    assert np.abs(packed[0][0, doc2] - packed[1][0, doc2]).max() > 1e-2
    full = _encode(encoder, ids), _encode(encoder, other)  # one attention over everything
    assert np.abs(full[0][0, doc1] - full[1][0, doc1]).max() > 1e-4
    # One document per sequence: the packed path is the functional graph, exactly.
    single = (ids > 0).astype(np.int32)
    real = ids[0] > 0
    np.testing.assert_array_equal(_encode(encoder, ids, single)[0, real],
                                  _encode(encoder, ids)[0, real])
    # Restarted positions: document 2 placed first encodes as it does alone.
    positions = restarted_positions(docs).numpy()
    assert positions[0].tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 0, 1, 0, 0]
    alone = np.array([[20, 21, 22, 3]], np.int32)
    np.testing.assert_allclose(
        _encode(encoder, ids, docs, positions)[0, doc2],
        _encode(encoder, alone, np.ones_like(alone), np.arange(4)[None])[0], atol=1e-5)


def test_pretraining_on_a_packed_dataset_serves_as_an_ordinary_pretrainer(tmp_path):
    ds = make_dataset_dir(tmp_path / "packed", next_sentence_prediction=False, packing=True,
                          masking="dynamic")
    out = tmp_path / "m"
    results = Pretrainer(PretrainConfig(
        input_file=str(ds), output_dir=str(out), model_overrides=tuple(TINY),
        train_batch_size=8, log_steps=2, restart_positions=True, eval_input_file=str(ds),
        max_predictions_per_seq=6,
        optimizer=OptimizerConfig(learning_rate=1e-3, num_train_steps=4,
                                  num_warmup_steps=1))).run()
    assert np.isfinite(results["loss"]) and 0 <= results["eval_mlm_accuracy"] <= 1
    md = open_model_dir(str(out))
    assert md.config["dataset"]["packed"] and md.config["dataset"]["restart_positions"]
    # The checkpoint has the unpacked graph's layout: the serving model loads all of it.
    model, encoder, task = load_model(md)
    assert "nsp_logits" not in model.output and task.kind == "pretrainer"


def test_dynamic_masking_takes_the_rate_asked_for_and_whole_words():
    import tensorflow as tf

    from model.tasks.pretraining import dynamic_masker

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(50)] + \
        [f"##c{i}" for i in range(20)]
    rng = np.random.default_rng(0)
    ids = rng.integers(5, len(vocab), size=(256, 128)).astype(np.int32)
    ids[:, 0], ids[:, 100], ids[:, 101:] = 2, 3, 0  # 99 maskable tokens per row
    continuation = np.array([t.startswith("##") for t in vocab])
    for whole_word in (False, True):
        out = {k: v.numpy() for k, v in dynamic_masker(vocab, 39, 0.3, whole_word)(
            {"input_ids": tf.constant(ids)}).items()}
        weights, positions = out["masked_lm_weights"], out["masked_lm_positions"]
        per_row = weights.sum(axis=1)
        if whole_word:  # whole words up to the budget
            assert per_row.max() <= 30 and per_row.mean() > 27
        else:
            assert (per_row == 30).all()  # round(99 x 0.3), every row
        rows = np.repeat(np.arange(256)[:, None], 39, axis=1)
        chosen = weights > 0
        labels, now = out["masked_lm_ids"][chosen], out["input_ids"][rows[chosen],
                                                                       positions[chosen]]
        assert (labels == ids[rows[chosen], positions[chosen]]).all()
        assert (positions[chosen] >= 1).all() and (positions[chosen] < 100).all()
        assert 0.77 < (now == 4).mean() < 0.83 and 0.08 < (now == labels).mean() < 0.12
        unchanged = np.ones_like(ids, bool)
        unchanged[rows[chosen], positions[chosen]] = False
        assert (out["input_ids"][unchanged] == ids[unchanged]).all()
        if whole_word:  # a "##" piece is chosen exactly when the token before it is
            mask = np.zeros_like(ids, bool)
            mask[rows[chosen], positions[chosen]] = True
            follows = continuation[ids[:, 2:100]]
            assert (mask[:, 2:100][follows] == mask[:, 1:99][follows]).all()

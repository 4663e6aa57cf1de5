r"""Model directory -> SavedModels for TF Serving and for TF Hub users.

    python -m model.export --model_dir runs/demo/bert_tiny --export_dir runs/demo/export

writes, for any model directory (pretrained, imported, fine-tuned), version N
(one more than the newest already there, or --version):

    EXPORT_DIR/<name>/N/                    TF Serving model; signatures:
        serving_default  text [B] string (+ text_b [B] string for pair models;
                         "" = no second segment) -> the kind's outputs, tokenized in-graph
        token_ids        input_ids, input_mask, segment_ids [B, L] int32 (+ masked_lm_positions
                         [B, P] for a pretrainer) -> the same outputs, no tokenizer
    EXPORT_DIR/<name>/N/assets.extra/export.json
                                            what was written, the signatures, the tf-text ops
                                            the raw-text model needs, the verification
    EXPORT_DIR/<name>_token_ids/N/          token_ids only: core TensorFlow ops, for servers
                                            without tensorflow-text
    EXPORT_DIR/<name>_encoder/N/            TF Hub reusable BERT encoder (model/export/hub.py)
    EXPORT_DIR/<name>_preprocessor/N/       TF Hub BERT preprocessor: __call__(text),
                                            tokenize(text), bert_pack_inputs(segments,
                                            seq_length=), pair(text, text_b)

The raw-text signatures pack to the length the model was trained or
fine-tuned at (config.json), unless --max_seq_length says otherwise.

Then it checks its own output as the clients run it (model/export/checks.py):
in a fresh process importing only tensorflow and tensorflow_text, TF
Serving's graph-mode session loader runs every signature of every
SavedModel, tf.saved_model.load runs the raw-text signature and the TF Hub
encoder, and `saved_model_cli run` runs the token_ids model from an input
file; every output must match the Keras model (max abs diff <= 1e-5).
"""

import json

from absl import app, flags

from model import cli
from model.export.verify import ExportError
from model.export.writer import ExportConfig, export
import tfrecords.cli

FLAGS = flags.FLAGS


def define_flags():
    """The command's flags (defined only when it runs as a command, so that tests and
    other modules can import this one beside other commands)."""
    flags.DEFINE_string("model_dir", None, "A model directory (pretrained, imported, fine-tuned).")
    flags.DEFINE_string("export_dir", None, "Where to write the SavedModels.")
    flags.DEFINE_integer("version", 0, "Serving version (default: one more than the newest).",
                         lower_bound=0)
    flags.DEFINE_string("name", "", "Serving model name (default: the model dir's basename).")
    flags.DEFINE_integer("max_seq_length", 0, "Packed length of the raw-text signatures "
                         "(0: the length the model was trained or fine-tuned at).", lower_bound=0)
    flags.DEFINE_integer("max_predictions_per_seq", 20, "Masked positions predicted (pretrainer).",
                         lower_bound=1)
    flags.DEFINE_integer("top_k", 5, "Predictions per masked position (pretrainer).", lower_bound=1)
    flags.DEFINE_bool("verify", True, "Run every SavedModel as its clients do (session loader, "
                      "tf.saved_model.load, saved_model_cli) and compare with Keras.")
    flags.DEFINE_enum("format", "savedmodel", ["savedmodel", "hf", "keras_hub"],
                      "savedmodel: the SavedModels above; hf: a Hugging Face transformers "
                      "directory (model/export/hf.py); keras_hub: a keras-hub preset "
                      "(model/export/keras_hub.py). The other flags apply to savedmodel.")
    flags.DEFINE_bool("jit_compile", False, "XLA-compile the model in the serving SavedModels "
                      "(TF Serving then needs --xla_cpu_compilation_enabled on CPU).")


def main(argv):
    cli.no_arguments(argv, "export")
    cli.quiet_tensorflow()
    try:
        info = export(cli.config_from_flags(ExportConfig))
    except ExportError as e:
        raise SystemExit(f"export: {e}") from None
    if FLAGS.format != "savedmodel":
        print(json.dumps(info))
        return
    print(json.dumps({"serving": info["saved_models"]["serving"], "version": info["version"],
                      "seq_length": info["seq_length"], "signatures": sorted(info["signatures"])}))


def entry_point():
    define_flags()
    flags.mark_flags_as_required(["model_dir", "export_dir"])
    app.run(main, flags_parser=tfrecords.cli.flags_parser("export"))


if __name__ == "__main__":
    entry_point()

"""Keras + keras-hub models: the BERT pretrainer, training under tf.distribute.

Importing the package turns TensorFlow's oneDNN kernels on (TF_ENABLE_ONEDNN_OPTS=1)
unless the environment already says otherwise: TensorFlow enables them by itself only
on CPUs with AVX512_VNNI, AVX512_BF16 or AMX, and on an AVX2 CPU (AMD EPYC, 2 cores)
they made bert_tiny pretraining 2.3-3x faster (50 -> 115-144 sequences/s, measured,
see docs/pretraining.md). Set TF_ENABLE_ONEDNN_OPTS=0 to keep TensorFlow's default kernels. It must
happen before TensorFlow is imported, hence here.
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

"""The package and its console scripts; also what Beam ships to remote workers.

    pip install -e .                       # local development
    python -m pipeline.create_pretraining_data ... --setup_file ./setup.py   # Dataflow/Flink/Spark

install_requires names the direct dependencies at the versions of
requirements.txt (the full lock), so remote Beam workers get the same stack.
"""

import setuptools

setuptools.setup(
    name="bert-pipeline",
    version="0.1.0",
    description="BERT pretraining data (Apache Beam), training (Keras, keras-hub), "
    "export (TF Serving) and fine-tuning on TensorFlow",
    packages=setuptools.find_packages(include=["tfrecords", "pipeline", "model", "model.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow==2.21.0",
        "tensorflow-text==2.21.1",
        "keras==3.15.1",
        "keras-hub==0.32.0",
        "apache-beam==2.77.0",
        "absl-py==2.5.1",
        "google-crc32c==1.9.0",
        "mwparserfromhell==0.7.2",
        "blingfire==0.1.8",
        "tokenizers==0.23.3",
        "tensorboard==2.21.0",
        "safetensors==0.8.0",
        "matplotlib==3.11.2",
        "dask[distributed]==2026.8.0",
        "distributed==2026.8.0",
        "psutil==7.2.2",
        "datasketch==2.0.0",
    ],
    entry_points={
        "console_scripts": [
            "bert-inspect=tfrecords.inspect:entry_point",
            "bert-sample-data=pipeline.sample_data:entry_point",
            "bert-create-pretraining-data=pipeline.create_pretraining_data:entry_point",
            "bert-clean-corpus=pipeline.clean_corpus:entry_point",
            "bert-build-vocab=pipeline.build_vocab:entry_point",
            "bert-pretrain=model.pretrain:entry_point",
            "bert-import-checkpoint=model.import_checkpoint:entry_point",
            "bert-export=model.export.__main__:entry_point",
            "bert-predict=model.predict:entry_point",
            "bert-finetune=model.finetune:entry_point",
        ],
    },
)

"""The networks: the BERT encoder, its heads, the presets (architectures and their
configuration), the Keras pretraining model, the in-graph WordPiece preprocessing, and
the model directory (config.json + vocab + weights) that training, tasks and export
share. The ground floor of model/: it imports nothing from the other rooms."""

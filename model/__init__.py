"""Keras + keras-hub models: the BERT pretrainer, training under tf.distribute."""

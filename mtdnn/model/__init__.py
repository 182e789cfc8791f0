"""The network: encoders, task heads, the MT-DNN module, how a model is built, checkpoint files, and inference."""

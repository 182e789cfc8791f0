"""What the model and the trainer both run on: tokenized rows as padded batches, the device and
its autocast dtype, the GPU-request check, and fault injection. It imports neither ``model`` nor
``training``, so inference and checkpoints need nothing from the training loop."""
